//! Kubernetes resource quantities: accepted from YAML as strings or numbers, always rendered as strings.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource quantity such as `2`, `500m`, `6Gi`, kept verbatim and comparable by value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(String);

impl Quantity {
    /// Parse and validate the Kubernetes quantity syntax (`<number><suffix>`).
    pub fn parse(s: &str) -> Result<Self, String> {
        value_of(s).map(|_| Quantity(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value in base units (cores, bytes), for comparisons.
    pub fn value(&self) -> f64 {
        // Validated at construction.
        value_of(&self.0).unwrap_or(0.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const SUFFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1024.0 * 1024.0),
    ("Gi", 1024.0 * 1024.0 * 1024.0),
    ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

fn value_of(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a Kubernetes quantity (examples: 2, 500m, 1.5, 6Gi, 512Mi)");
    if s.is_empty() || s.trim() != s {
        return Err(bad());
    }
    let (num, mult) = SUFFIXES
        .iter()
        .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((s, 1.0));
    // Decimal exponent form (1e3) is legal too.
    let numeric = num
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'));
    if num.is_empty() || !numeric || num.starts_with('-') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() {
        return Err(bad());
    }
    // The API server stores quantities as int64 (in milli-units for the smallest suffixes).
    let value = v * mult;
    if value >= 9.2e18 {
        return Err(format!(
            "`{s}` is larger than any Kubernetes quantity (at most about 8Ei)"
        ));
    }
    Ok(value)
}

impl<'de> Deserialize<'de> for Quantity {
    /// A string, an integer or a float (as YAML reads `2`, `"2"`, `0.5` or `6Gi`), through a
    /// visitor: an untagged enum buffered each of the 5000 quantities of a 1000-model config.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a quantity such as \"2\", \"500m\" or \"6Gi\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Quantity, E> {
                Quantity::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, i: u64) -> Result<Quantity, E> {
                self.visit_str(&i.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Quantity, E> {
                self.visit_str(&i.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Quantity, E> {
                self.visit_str(&f.to_string())
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_memory() {
        assert_eq!(Quantity::parse("2").unwrap().value(), 2.0);
        assert_eq!(Quantity::parse("500m").unwrap().value(), 0.5);
        assert_eq!(Quantity::parse("1.5").unwrap().value(), 1.5);
        assert_eq!(
            Quantity::parse("1Gi").unwrap().value(),
            1024.0 * 1024.0 * 1024.0
        );
        assert!(Quantity::parse("2000m").unwrap().value() > Quantity::parse("1").unwrap().value());
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "two", "2 cores", "-1", "Gi", " 2", "1.2.3"] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn numbers_in_yaml_become_strings() {
        let q: Quantity = serde_yaml::from_str("2").unwrap();
        assert_eq!(q.as_str(), "2");
        let q: Quantity = serde_yaml::from_str("\"8Gi\"").unwrap();
        assert_eq!(q.as_str(), "8Gi");
    }
}
