//! The OpenAPI 3.1 description served at `/openapi.json`, written by hand with `serde_json`
//! (why not utoipa: `docs/extracted.md`).

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}});
    let identity = json!([
        {"name": "X-Ficus-Subject", "in": "header", "required": true, "description": "set by the proxy: the authenticated user id", "schema": {"type": "string"}},
        {"name": "X-Ficus-Roles", "in": "header", "description": "set by the proxy: comma separated roles", "schema": {"type": "string"}}
    ]);
    let shadow = json!({"name": "X-Ficus-Shadow", "in": "header", "description": "dry-run: validate and answer, commit nothing", "schema": {"const": "dry-run"}});
    let mut with_shadow = identity.as_array().cloned().unwrap_or_default();
    with_shadow.push(id.clone());
    with_shadow.push(shadow);
    let mut read = identity.as_array().cloned().unwrap_or_default();
    read.push(id);
    let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let ok = json!({"description": "the subscription", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Subscription"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "subscriptions", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Subscription status tracking: trial, active, past_due, cancelled, expired."},
        "paths": {
            "/api/users/{id}/subscription": {"get": {"summary": "The user's subscription (owner, admin or support)", "parameters": read,
                "responses": {"200": ok, "400": err("bad id"), "401": err("no identity"), "403": err("not the owner"), "404": err("unknown user or no subscription")}}},
            "/api/users/{id}/subscription/cancel": {"post": {"summary": "Cancel (from trial, active or past_due)", "parameters": with_shadow,
                "responses": {"200": ok, "400": err("bad id"), "401": err("no identity"), "403": err("not the owner"), "404": err("unknown user or no subscription"), "409": err("invalid transition; body has from and to")}}},
            "/api/users/{id}/subscription/status": {"post": {"summary": "Move to any allowed status (roles admin, support, jobs)", "parameters": with_shadow,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "additionalProperties": false,
                    "properties": {"status": {"$ref": "#/components/schemas/Status"}}}}}},
                "responses": {"200": ok, "401": err("no identity"), "403": err("role missing"), "404": err("unknown user or no subscription"), "409": err("invalid transition"), "415": err("not JSON"), "422": err("field errors")}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {"schemas": {
            "Status": {"type": "string", "enum": ["trial", "active", "past_due", "cancelled", "expired"]},
            "Subscription": {"type": "object", "required": ["id", "user_id", "plan", "status", "started_at", "current_period_end", "cancelled_at", "updated_at"],
                "properties": {"id": {"type": "integer"}, "user_id": {"type": "integer"}, "plan": {"type": "string", "enum": ["monthly", "annual"]},
                    "status": {"$ref": "#/components/schemas/Status"}, "started_at": {"type": "string", "format": "date-time"},
                    "current_period_end": {"type": "string", "format": "date-time"}, "cancelled_at": {"type": ["string", "null"], "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"}}},
            "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                "from": {"type": "string"}, "to": {"type": "string"},
                "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}
        }}
    })
}
