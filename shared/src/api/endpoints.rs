//! `/org/{org_slug}/webhooks/endpoints...`: create, list, get, update, delete,
//! rotate-secret, test.

use super::error::ApiError;
use super::extract::auth::{Caller, Read, Write};
use super::extract::body::{FromJson, JsonFields, ValidJson, required};
use super::extract::path::EndpointId;
use super::extract::query::NoQuery;
use super::publish::accepted;
use super::request_metrics::labelled;
use super::state::EndpointsState;
use super::views::EndpointView;
use crate::domain::validation::{self, MAX_ENDPOINTS_PER_ORG};
use crate::domain::{self, Endpoint, EndpointChanges, NewEndpoint, SigningSecret};
use crate::pipeline::{Audience, PublishRequest, lookup};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub fn routes(state: EndpointsState) -> Router {
    labelled(
        Router::new()
            .route("/org/{org_slug}/webhooks/endpoints", post(create).get(list))
            .route(
                "/org/{org_slug}/webhooks/endpoints/{endpoint_id}",
                get(show).patch(update).delete(remove),
            )
            .route(
                "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/rotate-secret",
                post(rotate_secret),
            )
            .route(
                "/org/{org_slug}/webhooks/endpoints/{endpoint_id}/test",
                post(send_test),
            )
            .with_state(state),
        "endpoints",
    )
}

#[derive(Serialize)]
struct EndpointList<'a> {
    endpoints: Vec<EndpointView<'a>>,
}

/// The create answer: the one place besides rotation where the secret is shown.
#[derive(Serialize)]
struct CreatedEndpoint<'a> {
    #[serde(flatten)]
    endpoint: EndpointView<'a>,
    secret: &'a str,
}

async fn create(
    State(state): State<EndpointsState>,
    caller: Caller<Write>,
    _: NoQuery,
    ValidJson(new): ValidJson<NewEndpoint>,
) -> Result<Response, ApiError> {
    let org = caller.org();
    let number = state.endpoints.allocate_endpoint_number().await?;
    let endpoint = Endpoint::create(org, new, number, domain::now());
    state
        .endpoints
        .insert_endpoint(&endpoint, MAX_ENDPOINTS_PER_ORG)
        .await?;
    tracing::info!(org = org.as_str(), endpoint_id = %endpoint.id, "endpoint created");
    let created = CreatedEndpoint {
        endpoint: EndpointView::from(&endpoint),
        secret: endpoint.secret.expose(),
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list(
    State(state): State<EndpointsState>,
    caller: Caller<Read>,
    _: NoQuery,
) -> Result<Response, ApiError> {
    let endpoints = state.endpoints.list_endpoints(caller.org()).await?;
    Ok(Json(EndpointList {
        endpoints: endpoints.iter().map(EndpointView::from).collect(),
    })
    .into_response())
}

async fn show(
    State(state): State<EndpointsState>,
    caller: Caller<Read>,
    EndpointId(id): EndpointId,
    _: NoQuery,
) -> Result<Response, ApiError> {
    let endpoint = lookup::endpoint(state.endpoints.as_ref(), caller.org(), id).await?;
    Ok(Json(EndpointView::from(&endpoint)).into_response())
}

async fn update(
    State(state): State<EndpointsState>,
    caller: Caller<Write>,
    EndpointId(id): EndpointId,
    _: NoQuery,
    ValidJson(changes): ValidJson<EndpointChanges>,
) -> Result<Response, ApiError> {
    let endpoint = state.lifecycle.update(caller.org(), id, &changes).await?;
    Ok(Json(EndpointView::from(&endpoint)).into_response())
}

async fn remove(
    State(state): State<EndpointsState>,
    caller: Caller<Write>,
    EndpointId(id): EndpointId,
    _: NoQuery,
) -> Result<StatusCode, ApiError> {
    state.lifecycle.delete(caller.org(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_secret(
    State(state): State<EndpointsState>,
    caller: Caller<Write>,
    EndpointId(id): EndpointId,
    _: NoQuery,
) -> Result<Response, ApiError> {
    let org = caller.org();
    let secret = SigningSecret::generate();
    if !state
        .endpoints
        .replace_secret(org, id, &secret, domain::now())
        .await?
    {
        return Err(ApiError::NotFound);
    }
    tracing::info!(org = org.as_str(), endpoint_id = %id, "endpoint secret rotated");
    Ok(Json(serde_json::json!({ "id": id, "secret": secret.expose() })).into_response())
}

async fn send_test(
    State(state): State<EndpointsState>,
    caller: Caller<Write>,
    EndpointId(id): EndpointId,
    _: NoQuery,
) -> Result<Response, ApiError> {
    let request = PublishRequest {
        id: None,
        event_type: TEST_EVENT_TYPE.to_owned(),
        data: serde_json::json!({
            "endpoint_id": id,
            "message": "This is a test event from AgentVista Webhooks.",
        }),
    };
    let published = state
        .publisher
        .publish(caller.org(), request, Audience::Endpoint(id))
        .await?;
    // No delivery: the endpoint was deleted after it was looked up.
    let delivery_id = published.delivery_ids.first().ok_or(ApiError::NotFound)?;
    Ok(accepted(
        &published,
        Some(("delivery_id", serde_json::json!(delivery_id))),
    ))
}

/// The event type of `POST .../test`.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// A create's fields as given: `url` and `event_types` required, in this order.
pub struct GivenEndpoint {
    url: String,
    description: Option<String>,
    event_types: Vec<String>,
}

impl FromJson for NewEndpoint {
    type Given = GivenEndpoint;

    fn take(fields: &mut JsonFields) -> Result<GivenEndpoint, ApiError> {
        Ok(GivenEndpoint {
            url: required(fields.string("url")?, "url")?,
            description: fields.nullable_string("description")?.flatten(),
            event_types: required(fields.string_list("event_types")?, "event_types")?,
        })
    }

    fn check(given: GivenEndpoint) -> Result<Self, ApiError> {
        Ok(NewEndpoint {
            url: validation::endpoint_url(&given.url)?,
            description: validation::description(&given.description.unwrap_or_default())?,
            event_types: validation::event_types(given.event_types)?,
        })
    }
}

/// A PATCH's fields as given, every one optional; `"description": null` clears the
/// label.
pub struct GivenChanges {
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    is_active: Option<bool>,
}

impl FromJson for EndpointChanges {
    type Given = GivenChanges;

    fn take(fields: &mut JsonFields) -> Result<GivenChanges, ApiError> {
        Ok(GivenChanges {
            url: fields.string("url")?,
            description: fields
                .nullable_string("description")?
                .map(Option::unwrap_or_default),
            event_types: fields.string_list("event_types")?,
            is_active: fields.bool("is_active")?,
        })
    }

    fn check(given: GivenChanges) -> Result<Self, ApiError> {
        Ok(EndpointChanges {
            url: given
                .url
                .as_deref()
                .map(validation::endpoint_url)
                .transpose()?,
            description: given
                .description
                .as_deref()
                .map(validation::description)
                .transpose()?,
            event_types: given.event_types.map(validation::event_types).transpose()?,
            is_active: given.is_active,
        })
    }
}
