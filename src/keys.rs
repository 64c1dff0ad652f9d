//! Stable 64-bit keys of names (FNV-1a): the same name gives the same key
//! in every process and version. They name PostgreSQL advisory locks
//! (`store`, `rollup`) and place sites in interval slots and shards
//! (`schedule`).

/// The key of `name`, as PostgreSQL's `bigint` advisory lock keys are.
pub fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable() {
        assert_eq!(lock_key(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(lock_key("a:0"), lock_key("a:1"));
    }
}
