//! The upstream client's response reader never panics on any bytes, and what it accepts
//! is consistent: a body never longer than its input, a `Content-Length` body exactly that
//! long, no `Content-Length` left beside `Transfer-Encoding`, and no bodies on HEAD answers.
#![no_main]

use ficus::upstream::wire::read_response;
use http::{Method, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the request method, the rest is the response.
    let Some((&pick, raw)) = data.split_first() else {
        return;
    };
    let method = if pick & 1 == 1 { Method::HEAD } else { Method::GET };
    let Ok(Some(resp)) = read_response(raw, &method) else {
        return;
    };
    assert!(resp.body.len() <= raw.len());
    assert!(!resp.status.is_informational());
    if method == Method::HEAD {
        assert!(resp.body.is_empty());
    }
    let te = resp.headers.contains_key(header::TRANSFER_ENCODING);
    if te {
        assert!(!resp.headers.contains_key(header::CONTENT_LENGTH));
    } else if let (Some(cl), false) = (resp.headers.get(header::CONTENT_LENGTH), method == Method::HEAD) {
        let status = resp.status.as_u16();
        if status != 204 && status != 304 {
            let first = cl.to_str().unwrap().split(',').next().unwrap().trim();
            assert_eq!(first.parse::<usize>().unwrap(), resp.body.len());
        }
    }
});
