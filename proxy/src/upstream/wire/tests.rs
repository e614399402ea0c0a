//! The pure parts of the bodiless client: head encoding, head parsing and framing,
//! the chunked decoder. The exchange over real sockets is tested in `upstream::tests`
//! and by the proxy's integration tests.

#![allow(clippy::unwrap_used)]

use super::*;

fn parse(raw: &[u8], method: &Method) -> Result<Option<Head>, WireError> {
    let mut buf = BytesMut::from(raw);
    parse_head(&mut buf, method)
}

fn head(raw: &str) -> Head {
    parse(raw.as_bytes(), &Method::GET).unwrap().unwrap()
}

#[test]
fn request_head_is_origin_form_without_transfer_encoding() {
    let req = Request::builder()
        .method(Method::DELETE)
        .uri("/api/users/7?x=1")
        .header("host", "legacy")
        .header("transfer-encoding", "chunked")
        .header("x-request-id", "abc")
        .header("x-request-id", "def")
        .body(())
        .unwrap();
    let mut out = b"left over".to_vec();
    encode_head(&req, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "DELETE /api/users/7?x=1 HTTP/1.1\r\nhost: legacy\r\nx-request-id: abc\r\nx-request-id: def\r\n\r\n"
    );
}

#[test]
fn framing_follows_rfc_9112() {
    assert_eq!(
        head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n").framing,
        Framing::Length(5)
    );
    assert_eq!(
        head("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").framing,
        Framing::Length(5)
    );
    let h =
        head("HTTP/1.1 200 OK\r\ncontent-length: 9\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
    assert_eq!(h.framing, Framing::Chunked);
    assert!(
        h.headers.get(header::CONTENT_LENGTH).is_none(),
        "TE wins and CL is dropped"
    );
    assert_eq!(
        head("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n").framing,
        Framing::Close
    );
    assert_eq!(head("HTTP/1.1 200 OK\r\n\r\n").framing, Framing::Close);
    assert_eq!(
        head("HTTP/1.1 204 No Content\r\ncontent-length: 3\r\n\r\n").framing,
        Framing::None
    );
    assert_eq!(
        head("HTTP/1.1 304 Not Modified\r\n\r\n").framing,
        Framing::None
    );
    let h = parse(
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
        &Method::HEAD,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing, Framing::None);
    assert_eq!(
        h.headers[header::CONTENT_LENGTH],
        "5",
        "a HEAD answer keeps its length"
    );
    // Found by the wire_response fuzz target: TE beside CL on a bodiless answer.
    for method in [Method::HEAD, Method::GET] {
        let raw = b"HTTP/1.1 204 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n";
        let h = parse(raw, &method).unwrap().unwrap();
        assert_eq!(h.framing, Framing::None);
        assert!(h.headers.get(header::CONTENT_LENGTH).is_none(), "{method}");
    }
}

#[test]
fn bad_lengths_and_codings_are_refused() {
    for raw in [
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
    ] {
        assert!(parse(raw.as_bytes(), &Method::GET).is_err(), "{raw:?}");
    }
}

#[test]
fn keep_alive_rules() {
    assert!(head("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").keep_alive);
    assert!(!head("HTTP/1.1 200 OK\r\nconnection: Close\r\ncontent-length: 0\r\n\r\n").keep_alive);
    assert!(
        !head("HTTP/1.1 200 OK\r\nconnection: close\r\nconnection: keep-alive\r\n\r\n").keep_alive,
        "a later keep-alive does not undo close"
    );
    assert!(!head("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").keep_alive);
    let h = head("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n");
    assert!(h.keep_alive);
    assert_eq!(h.version, Version::HTTP_10);
}

#[test]
fn partial_heads_wait_and_interim_responses_are_skipped() {
    let full = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 2\r\n\r\nhi";
    for cut in 0..full.len() - 2 {
        let mut buf = BytesMut::from(&full[..cut]);
        // Whatever was consumed, a later call with the rest completes the same head.
        let first = parse_head(&mut buf, &Method::GET).unwrap();
        if first.is_some() {
            assert!(cut >= full.len() - 2, "head completed early at {cut}");
        }
        buf.extend_from_slice(&full[cut..]);
        let h = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::CREATED);
        let values: Vec<_> = h.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(&buf[..], b"hi", "cut at {cut}");
    }
}

#[test]
fn oversized_heads_are_refused() {
    let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        raw.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    assert!(
        parse(&raw, &Method::GET).is_err(),
        "more than MAX_HEADERS headers"
    );
}

/// Decodes `input` fed in pieces of `step` bytes; returns the data and the trailers.
fn dechunk(input: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>), WireError> {
    let mut state = Chunk::Size;
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut fed = 0;
    loop {
        match decode_chunk(&mut state, &mut buf)? {
            Step::More => {
                if fed == input.len() {
                    return Err(WireError::Incomplete);
                }
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            Step::Again => {}
            Step::Data(d) => data.extend_from_slice(&d),
            Step::End(trailers) => {
                assert!(
                    buf.is_empty() && fed == input.len(),
                    "bytes left after the body"
                );
                return Ok((data, trailers));
            }
        }
    }
}

#[test]
fn chunked_bodies_decode_in_any_pieces() {
    let body = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n";
    for step in [1, 2, 3, 7, body.len()] {
        let (data, trailers) = dechunk(body, step).unwrap();
        assert_eq!(data, b"hello 0123456789");
        assert!(trailers.is_none());
    }
    let with_trailers = b"3\r\nabc\r\n0\r\nx-checksum: 42\r\nx-more: a\r\n\r\n";
    for step in [1, 5, with_trailers.len()] {
        let (data, trailers) = dechunk(with_trailers, step).unwrap();
        assert_eq!(data, b"abc");
        let t = trailers.unwrap();
        assert_eq!(t["x-checksum"], "42");
        assert_eq!(t["x-more"], "a");
    }
}

#[test]
fn broken_chunked_bodies_are_errors() {
    for raw in [
        &b"5\r\nhelloX\r\n0\r\n\r\n"[..],
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhel",
        b"0\r\nbad trailer\r\n\r\n",
    ] {
        assert!(
            dechunk(raw, 1).is_err(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let long = vec![b'1'; MAX_CHUNK_LINE + 1];
    assert!(matches!(
        dechunk(&long, long.len()),
        Err(WireError::Chunked(_))
    ));
}

#[test]
fn whole_responses_read_as_the_client_reads_them() {
    let r = read_response(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n5;x=1\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!((r.body.as_slice(), r.reusable), (&b"hello"[..], true));
    assert_eq!(r.trailers.unwrap()["x-sum"], "5");
    let r = read_response(
        b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\nto the end",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!((r.body.as_slice(), r.reusable), (&b"to the end"[..], false));
    let r = read_response(
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloEXTRA",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (r.body.as_slice(), r.reusable),
        (&b"hello"[..], false),
        "bytes after the body"
    );
    assert!(
        read_response(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel",
            &Method::GET
        )
        .unwrap()
        .is_none()
    );
}
