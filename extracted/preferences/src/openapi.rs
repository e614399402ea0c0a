//! The OpenAPI 3.1 description served at `/openapi.json`, written by hand with `serde_json`
//! (why not utoipa: `docs/extracted.md`).

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let params = json!([
        {"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
        {"name": "X-Ficus-Subject", "in": "header", "required": true, "description": "set by the proxy: the authenticated user id", "schema": {"type": "string"}},
        {"name": "X-Ficus-Roles", "in": "header", "description": "set by the proxy: comma separated roles", "schema": {"type": "string"}},
        {"name": "X-Ficus-Shadow", "in": "header", "description": "dry-run: validate and answer, commit nothing (PUT)", "schema": {"const": "dry-run"}}
    ]);
    let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let ok = json!({"description": "the preferences", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Preferences"}}}});
    let category = json!({"type": "string", "enum": ["yoga", "hiit", "strength", "cardio", "pilates", "mobility", "meditation", "cycling", "running", "dance"]});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "preferences", "version": env!("CARGO_PKG_VERSION"),
                 "description": "A user's training preferences, used to personalise the ranking."},
        "paths": {
            "/api/users/{id}/preferences": {
                "get": {"summary": "The user's preferences (owner, admin or support)", "parameters": params,
                    "responses": {"200": ok, "400": err("bad id"), "401": err("no identity"), "403": err("not the owner"), "404": err("unknown user or none saved")}},
                "put": {"summary": "Replace the user's preferences", "parameters": params,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PreferencesInput"}}}},
                    "responses": {"200": ok, "400": err("bad id or broken JSON"), "401": err("no identity"), "403": err("not the owner"), "404": err("unknown user"), "415": err("not application/json"), "422": err("validation failed; fields lists every error")}}
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {"schemas": {
            "PreferencesInput": {"type": "object", "additionalProperties": false, "required": ["categories", "email_opt_in"],
                "properties": {"categories": {"type": "array", "maxItems": 5, "uniqueItems": true, "items": category},
                    "intensity": {"type": ["string", "null"], "enum": ["low", "medium", "high", null]},
                    "max_duration_minutes": {"type": ["integer", "null"], "minimum": 5, "maximum": 180},
                    "email_opt_in": {"type": "boolean"}}},
            "Preferences": {"type": "object", "required": ["user_id", "categories", "intensity", "max_duration_minutes", "email_opt_in", "updated_at"],
                "properties": {"user_id": {"type": "integer"}, "categories": {"type": "array", "items": category},
                    "intensity": {"type": ["string", "null"]}, "max_duration_minutes": {"type": ["integer", "null"]},
                    "email_opt_in": {"type": "boolean"}, "updated_at": {"type": "string", "format": "date-time"}}},
            "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}
        }}
    })
}
