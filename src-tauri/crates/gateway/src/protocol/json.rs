//! A JSON object read once, its values left as raw text: enough to find and rewrite the few
//! fields the gateway touches (model, parameters) without parsing message histories, and to
//! write the object back in its original key order.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

pub struct RawObject<'a> {
    pub fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

#[derive(Debug, thiserror::Error)]
pub enum JsonBodyError {
    #[error("the request body is not valid JSON: {0}")]
    Syntax(serde_json::Error),
    #[error("the request body must be a JSON object")]
    NotAnObject,
}

impl<'a> RawObject<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, JsonBodyError> {
        let first = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .copied()
            .unwrap_or(b' ');
        if first != b'{' {
            // Keep serde's message for broken input, but say what is wrong with valid non-objects.
            return match serde_json::from_slice::<de::IgnoredAny>(body) {
                Ok(_) => Err(JsonBodyError::NotAnObject),
                Err(e) => Err(JsonBodyError::Syntax(e)),
            };
        }
        serde_json::from_slice(body).map_err(JsonBodyError::Syntax)
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Writes the object back, with `replace` values put in place of (or after) the originals.
    pub fn to_vec_with(&self, replace: &[(&str, &RawValue)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.fields
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 64,
        );
        out.push(b'{');
        let mut first = true;
        let mut push = |out: &mut Vec<u8>, k: &str, v: &RawValue| {
            if !first {
                out.push(b',');
            }
            first = false;
            // Keys came from valid JSON; re-escaping through serde keeps them valid.
            if let Ok(key) = serde_json::to_vec(k) {
                out.extend_from_slice(&key);
            }
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        };
        for (k, v) in &self.fields {
            let v = replace
                .iter()
                .find(|(rk, _)| rk == k)
                .map_or(*v, |(_, rv)| *rv);
            push(&mut out, k, v);
        }
        for (rk, rv) in replace {
            if !self.fields.iter().any(|(k, _)| k == rk) {
                push(&mut out, rk, rv);
            }
        }
        out.push(b'}');
        out
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields: Vec<(Cow<'de, str>, &'de RawValue)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(8));
                // A linear scan for the few fields of a normal request; a set once a body has
                // many, so that a hostile one cannot make the check quadratic.
                let mut seen: Option<std::collections::HashSet<String>> = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    let dup = match &mut seen {
                        Some(set) => !set.insert(key.to_string()),
                        None => fields.iter().any(|(k, _)| *k == key),
                    };
                    if dup {
                        return Err(de::Error::custom(format!("duplicate field `{key}`")));
                    }
                    if seen.is_none() && fields.len() >= 32 {
                        seen = Some(fields.iter().map(|(k, _)| k.to_string()).collect());
                        if let Some(set) = &mut seen {
                            set.insert(key.to_string());
                        }
                    }
                    fields.push((key, value));
                }
                Ok(RawObject { fields })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_rewrites_in_place() {
        let body =
            br#"{"model":"a","messages":[{"role":"user","content":"hi \"x\""}],"x":{"y":1}}"#;
        let obj = RawObject::parse(body).unwrap();
        assert_eq!(obj.get("model").unwrap().get(), r#""a""#);
        let m = serde_json::value::to_raw_value("upstream-b").unwrap();
        let out = obj.to_vec_with(&[("model", &m)]);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"upstream-b","messages":[{"role":"user","content":"hi \"x\""}],"x":{"y":1}}"#
        );
        let t = serde_json::value::to_raw_value(&0.5).unwrap();
        let out = obj.to_vec_with(&[("temperature", &t)]);
        assert!(out.ends_with(br#","temperature":0.5}"#));
    }

    #[test]
    fn escaped_keys_survive() {
        let body = br#"{"a\"b":1,"\u00e9":2}"#;
        let obj = RawObject::parse(body).unwrap();
        let out = obj.to_vec_with(&[]);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a\"b"], 1);
        assert_eq!(v["é"], 2);
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        assert!(matches!(
            RawObject::parse(b"[1]"),
            Err(JsonBodyError::NotAnObject)
        ));
        assert!(matches!(
            RawObject::parse(b"{\"a\":"),
            Err(JsonBodyError::Syntax(_))
        ));
        assert!(matches!(
            RawObject::parse(b""),
            Err(JsonBodyError::Syntax(_))
        ));
        assert!(matches!(
            RawObject::parse(b"{} x"),
            Err(JsonBodyError::Syntax(_))
        ));
        assert!(RawObject::parse(br#"{"a":1,"a":2}"#).is_err());
    }
}
