//! The preferences schema, checked field by field so a 422 lists every problem at once:
//!
//! | field | type | rule |
//! | --- | --- | --- |
//! | `categories` | array of strings, required | known categories, no duplicates, at most 5 |
//! | `intensity` | string or null, optional | `low`, `medium` or `high` |
//! | `max_duration_minutes` | integer or null, optional | 5 to 180 |
//! | `email_opt_in` | boolean, required | |
//!
//! Any other field is an error. The rules are the legacy's (`docs/legacy.md`); the legacy
//! reports a wrong type or an unknown field as one serde message without `fields`, this
//! reports each as a field error.

use fitness_data::models::{Category, Intensity, Preferences};
use fitness_data::time::Timestamp;
use serde_json::Value;
use service_kit::{ApiError, FieldError};

/// Most preferred categories.
pub const MAX_CATEGORIES: usize = 5;
/// Allowed `max_duration_minutes`.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 5..=180;
const FIELDS: &[&str] = &[
    "categories",
    "intensity",
    "max_duration_minutes",
    "email_opt_in",
];

/// Checks a PUT body for user `user_id`; the preferences to store, stamped `now`.
pub fn preferences(user_id: i64, body: &Value, now: i64) -> Result<Preferences, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "body",
            format!("must be a JSON object, got {}", kind(body)),
        )]));
    };
    let mut errors: Vec<FieldError> = obj
        .keys()
        .filter(|k| !FIELDS.contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                k.as_str(),
                format!("unknown field {k:?}; expected one of {}", FIELDS.join(", ")),
            )
        })
        .collect();

    let mut categories = Vec::new();
    match obj.get("categories") {
        None => errors.push(FieldError::new(
            "categories",
            "is required (use [] for none)",
        )),
        Some(Value::Array(items)) => {
            if items.len() > MAX_CATEGORIES {
                errors.push(FieldError::new(
                    "categories",
                    format!("at most {MAX_CATEGORIES} categories, got {}", items.len()),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let field = format!("categories[{i}]");
                match item.as_str().map(str::parse::<Category>) {
                    None => errors.push(FieldError::new(
                        field,
                        format!("must be a string, got {}", kind(item)),
                    )),
                    Some(Err(e)) => errors.push(FieldError::new(field, e.to_string())),
                    Some(Ok(c)) if categories.contains(&c) => errors.push(FieldError::new(
                        field,
                        format!("duplicate category {:?}", c.as_str()),
                    )),
                    Some(Ok(c)) => categories.push(c),
                }
            }
        }
        Some(other) => errors.push(FieldError::new(
            "categories",
            format!("must be an array of strings, got {}", kind(other)),
        )),
    }

    let intensity = match obj.get("intensity") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.parse::<Intensity>() {
            Ok(i) => Some(i),
            Err(e) => {
                errors.push(FieldError::new("intensity", e.to_string()));
                None
            }
        },
        Some(other) => {
            errors.push(FieldError::new(
                "intensity",
                format!("must be a string or null, got {}", kind(other)),
            ));
            None
        }
    };

    let max_duration_minutes = match obj.get("max_duration_minutes") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(m) if DURATION_RANGE.contains(&m) => Some(m),
            Some(m) => {
                errors.push(FieldError::new(
                    "max_duration_minutes",
                    format!(
                        "must be between {} and {}, got {m}",
                        DURATION_RANGE.start(),
                        DURATION_RANGE.end()
                    ),
                ));
                None
            }
            None => {
                errors.push(FieldError::new(
                    "max_duration_minutes",
                    format!("must be an integer or null, got {v}"),
                ));
                None
            }
        },
    };

    let email_opt_in = match obj.get("email_opt_in") {
        Some(Value::Bool(b)) => *b,
        None => {
            errors.push(FieldError::new("email_opt_in", "is required"));
            false
        }
        Some(other) => {
            errors.push(FieldError::new(
                "email_opt_in",
                format!("must be true or false, got {other}"),
            ));
            false
        }
    };

    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(Preferences {
        user_id,
        categories,
        intensity,
        max_duration_minutes,
        email_opt_in,
        updated_at: Timestamp(now),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(body: Value) -> Vec<String> {
        match preferences(1, &body, 0) {
            Err(ApiError::Validation(f)) => f
                .into_iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn valid_body() {
        let p = preferences(
            4,
            &json!({"categories": ["yoga", "hiit"], "intensity": "low", "max_duration_minutes": 30, "email_opt_in": true}),
            77,
        )
        .unwrap();
        assert_eq!(p.categories, vec![Category::Yoga, Category::Hiit]);
        assert_eq!(
            (p.user_id, p.updated_at.0, p.max_duration_minutes),
            (4, 77, Some(30))
        );
        let p = preferences(
            4,
            &json!({"categories": [], "intensity": null, "email_opt_in": false}),
            0,
        )
        .unwrap();
        assert_eq!((p.intensity, p.max_duration_minutes), (None, None));
    }

    #[test]
    fn every_error_at_once() {
        let got = fields(json!({
            "categories": ["yoga", "yoga", "zumba", 3, "hiit", "dance"],
            "intensity": "extreme",
            "max_duration_minutes": 500,
            "colour": "green"
        }));
        assert_eq!(
            got,
            vec![
                "colour: unknown field \"colour\"; expected one of categories, intensity, max_duration_minutes, email_opt_in",
                "categories: at most 5 categories, got 6",
                "categories[1]: duplicate category \"yoga\"",
                "categories[2]: unknown category \"zumba\"; expected one of yoga, hiit, strength, cardio, pilates, mobility, meditation, cycling, running, dance",
                "categories[3]: must be a string, got a number",
                "intensity: unknown intensity \"extreme\"; expected one of low, medium, high",
                "max_duration_minutes: must be between 5 and 180, got 500",
                "email_opt_in: is required",
            ]
        );
        assert_eq!(
            fields(json!([1])),
            vec!["body: must be a JSON object, got an array"]
        );
        assert_eq!(
            fields(
                json!({"categories": "yoga", "email_opt_in": "yes", "max_duration_minutes": 2.5})
            ),
            vec![
                "categories: must be an array of strings, got a string",
                "max_duration_minutes: must be an integer or null, got 2.5",
                "email_opt_in: must be true or false, got \"yes\"",
            ]
        );
    }
}
