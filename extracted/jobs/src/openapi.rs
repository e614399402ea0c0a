//! The OpenAPI 3.1 description of the admin API, served at `/openapi.json`. Hand-written
//! like the other services' (see `docs/extracted.md`); the `admin_endpoints` integration test
//! checks that every route is described.

use serde_json::{Value, json};

use crate::kind::Kind;

/// The document.
pub fn document() -> Value {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Ficus jobs worker admin API", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/jobs/{kind}": {"post": {
                "summary": "Enqueue a job now (on demand)",
                "parameters": [
                    {"name": "kind", "in": "path", "required": true, "schema": {"type": "string", "enum": kinds}},
                    {"name": "delay_secs", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"},
                     "description": "at most one job per key, ever"},
                    {"name": "X-Ficus-Shadow", "in": "header", "schema": {"type": "string", "enum": ["dry-run"]},
                     "description": "validate and answer, enqueue nothing"}
                ],
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object",
                    "description": "payload: expiry-alerts {days_before}, expiry-alert {user_id, period_end}, weekly-digest {items}; others {}"}}}},
                "responses": {
                    "202": {"description": "enqueued (or already existed with that key: created=false)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Enqueued"}}}},
                    "400": error, "404": error, "422": error, "503": error
                }
            }},
            "/jobs": {"get": {
                "summary": "Recent jobs, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["queued", "running", "done", "dead"]}},
                    {"name": "kind", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}}
                ],
                "responses": {"200": {"description": "jobs", "content": {"application/json": {"schema": {"type": "object",
                    "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}}}}}, "400": error}
            }},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Readiness (database answers)", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "message"],
                      "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                                     "fields": {"type": "array", "items": {"type": "object"}}}},
            "Enqueued": {"type": "object", "required": ["id", "kind", "status", "created", "dry_run"],
                         "properties": {"id": {"type": ["integer", "null"]}, "kind": {"type": "string"},
                                        "status": {"type": "string"}, "created": {"type": "boolean"},
                                        "dry_run": {"type": "boolean"}}},
            "Job": {"type": "object", "properties": {
                "id": {"type": "integer"}, "kind": {"type": "string"}, "payload": {"type": "object"},
                "idempotency_key": {"type": ["string", "null"]},
                "status": {"type": "string", "enum": ["queued", "running", "done", "dead"]},
                "run_at": {"type": "integer"}, "attempts": {"type": "integer"}, "max_attempts": {"type": "integer"},
                "locked_by": {"type": ["string", "null"]}, "locked_until": {"type": ["integer", "null"]},
                "last_error": {"type": ["string", "null"]}, "result": {},
                "created_at": {"type": "integer"}, "updated_at": {"type": "integer"}}}
        }}
    })
}
