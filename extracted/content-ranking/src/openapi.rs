//! The OpenAPI 3.1 description served at `/openapi.json`, written by hand with `serde_json`
//! (why not utoipa: `docs/extracted.md`). Keep it in step with the routes in `lib.rs`; a test
//! checks every route is described.

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "content-ranking", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Most popular content from users' favorites, with recency decay and optional personalisation. Extracted from the legacy monolith; same response shape."},
        "paths": {
            "/api/content/top": {"get": {
                "summary": "Top content",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
                    {"name": "user_id", "in": "query", "description": "personalise by this user's preferences", "schema": {"type": "integer"}}
                ],
                "responses": {
                    "200": {"description": "ranked content", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TopResponse"}}}},
                    "400": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"}
                }
            }},
            "/internal/ranking/refresh": {"post": {
                "summary": "Rebuild the ranking snapshot now (roles admin, support or jobs)",
                "parameters": [{"name": "X-Ficus-Shadow", "in": "header", "schema": {"const": "dry-run"}}],
                "responses": {
                    "200": {"description": "refreshed", "content": {"application/json": {"schema": {"type": "object", "properties": {"refreshed": {"type": "boolean"}, "items": {"type": "integer"}, "took_ms": {"type": "integer"}}}}}},
                    "401": {"$ref": "#/components/responses/Error"},
                    "403": {"$ref": "#/components/responses/Error"}
                }
            }},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {
            "schemas": {
                "TopItem": {"type": "object", "required": ["rank", "content_id", "title", "category", "intensity", "duration_minutes", "favorites", "score"],
                    "properties": {"rank": {"type": "integer"}, "content_id": {"type": "integer"}, "title": {"type": "string"},
                        "category": {"type": "string"}, "intensity": {"type": "string", "enum": ["low", "medium", "high"]},
                        "duration_minutes": {"type": "integer"}, "favorites": {"type": "integer"}, "score": {"type": "number"}}},
                "TopResponse": {"type": "object", "required": ["generated_at", "user_id", "personalised", "reference_time", "limit", "items"],
                    "properties": {"generated_at": {"type": "string", "format": "date-time", "description": "wall clock; differs on every call"},
                        "user_id": {"type": ["integer", "null"]}, "personalised": {"type": "boolean"},
                        "reference_time": {"type": "string", "format": "date-time"}, "limit": {"type": "integer"},
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/TopItem"}}}},
                "Error": {"type": "object", "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
            },
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
        }
    })
}
