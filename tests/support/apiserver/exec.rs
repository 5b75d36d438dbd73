use axum::http::request::Parts;
use axum::http::Method;
use axum::response::Response;

use super::errors::ApiError;
use super::handlers::Ctx;
use super::http::error_response;

pub async fn handle(_ctx: Ctx, _parts: &mut Parts, _method: &Method) -> Response {
    error_response(&ApiError::bad_request("exec: not yet"))
}
