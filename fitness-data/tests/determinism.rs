//! Same seed -> same data, byte for byte; different seed -> different data.

use fitness_data::dump::dump;
use fitness_data::{GenerateConfig, generate, open};

use crate::small_db;

#[test]
fn same_seed_gives_identical_dumps() {
    let a = dump(&small_db(7, 300)).unwrap();
    let b = dump(&small_db(7, 300)).unwrap();
    assert!(
        a.len() > 10_000,
        "dump is suspiciously small: {} bytes",
        a.len()
    );
    assert_eq!(a, b);
}

#[test]
fn different_seeds_give_different_dumps() {
    let a = dump(&small_db(7, 300)).unwrap();
    let b = dump(&small_db(8, 300)).unwrap();
    assert_ne!(a, b);
}

#[test]
fn same_seed_gives_identical_database_files() {
    let dir = std::env::temp_dir().join(format!("fitness-data-det-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for name in ["a.db", "b.db"] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let mut conn = open(&path).unwrap();
        generate(&mut conn, &GenerateConfig::small(11, 200)).unwrap();
        drop(conn);
        files.push(std::fs::read(&path).unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(files[0] == files[1], "database files differ");
}

#[test]
fn the_first_users_do_not_depend_on_how_many_users_are_generated() {
    // Each table draws from its own stream, and users are drawn in id order, so user 1..=50
    // are the same whether 50 or 100 users are generated.
    let a = small_db(3, 50);
    let b = small_db(3, 100);
    let q = "SELECT id, email, display_name, password_hash FROM users WHERE id <= 50 ORDER BY id";
    let rows = |c: &fitness_data::rusqlite::Connection| -> Vec<(i64, String, String, String)> {
        let mut s = c.prepare(q).unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(rows(&a), rows(&b));
}
