//! Types that travel as the text users type (`"+2"`, `"SIGINT"`, `"web"`):
//! serde through their `Display` and `FromStr`, so the wire keeps the plain
//! strings of protocol 1 and a bad value fails to decode.

/// Serialize with `Display`, deserialize with `FromStr`.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_as_text;
