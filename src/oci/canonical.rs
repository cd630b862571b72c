//! The one canonical JSON writer for every config, manifest and index kiln writes.
//!
//! Identical content must give identical bytes on any machine, so object keys are sorted
//! explicitly (never trusting map iteration order: oci-spec uses `HashMap`s for labels and
//! annotations) and the output is compact with no trailing newline.

use serde::Serialize;
use serde_json::Value;

/// Serialize `value` to canonical JSON bytes.
pub fn to_vec<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(1024);
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn sorts_keys_at_every_depth() {
        let mut inner = HashMap::new();
        for key in ["zeta", "alpha", "mid"] {
            inner.insert(key.to_owned(), key.len());
        }
        let value = serde_json::json!({"b": [inner], "a": {"y": 1, "x": 2}});
        let bytes = to_vec(&value).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"a":{"x":2,"y":1},"b":[{"alpha":5,"mid":3,"zeta":4}]}"#
        );
    }

    #[test]
    fn same_content_same_bytes_regardless_of_insertion_order() {
        let mut first = HashMap::new();
        let mut second = HashMap::new();
        for index in 0..50 {
            first.insert(format!("key{index}"), index);
        }
        for index in (0..50).rev() {
            second.insert(format!("key{index}"), index);
        }
        assert_eq!(to_vec(&first).unwrap(), to_vec(&second).unwrap());
    }
}
