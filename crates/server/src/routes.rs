use atalaya_model::{InstrumentId, OpportunityKind, Timeframe, UnixNanos, parse_utc};
use atalaya_store::{CandleQuery, OpportunityQuery};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// The API's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/status", get(status))
        .route("/api/v1/opportunities", get(opportunities))
        .route("/api/v1/candles", get(candles))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/portfolio", get(portfolio))
        .route("/api/v1/onchain", get(onchain))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(s): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&s),
    )
}

async fn status(State(s): State<AppState>) -> Json<Value> {
    let bus = s.bus.stats();
    let engine = s.health.engine();
    Json(json!({
        "uptime_s": s.started.elapsed().as_secs_f64(),
        "started_at": s.started_at,
        "events_per_sec": engine.events_per_sec,
        "bus_lag": bus.total_lagged(),
        "engine": engine,
        "sources": s.health.sources(),
        "bus": bus,
    }))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {}", e.body_text())))
}

fn parse<T, E: std::fmt::Display>(
    name: &str,
    v: Option<&str>,
    f: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| f(s).map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

fn number(name: &str, v: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let n = parse(name, v, |s| {
        s.parse::<u32>()
            .map_err(|_| format!("expected a whole number, got {s:?}"))
    })?
    .unwrap_or(default);
    if n == 0 || n > max {
        return Err(ApiError::BadRequest(format!(
            "{name}: must be between 1 and {max}, got {n}"
        )));
    }
    Ok(n)
}

fn time(name: &str, v: Option<&str>) -> Result<Option<UnixNanos>, ApiError> {
    parse(name, v, parse_utc)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpportunityParams {
    instrument: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

async fn opportunities(
    State(s): State<AppState>,
    q: Result<Query<OpportunityParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = query(q)?;
    let oq = OpportunityQuery {
        instrument: parse(
            "instrument",
            p.instrument.as_deref(),
            InstrumentId::from_client,
        )?,
        kind: parse("type", p.kind.as_deref(), str::parse::<OpportunityKind>)?,
        since: time("since", p.since.as_deref())?,
        page: number("page", p.page.as_deref(), 1, 1_000_000)?,
        per_page: number("per_page", p.per_page.as_deref(), 50, 1000)?,
    };
    let page = s.store.opportunities(&oq).await?;
    Ok(Json(
        serde_json::to_value(page).map_err(|e| ApiError::Internal(Box::new(e)))?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandleParams {
    instrument: Option<String>,
    timeframe: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

async fn candles(
    State(s): State<AppState>,
    q: Result<Query<CandleParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = query(q)?;
    let instrument = parse(
        "instrument",
        p.instrument.as_deref(),
        InstrumentId::from_client,
    )?
    .ok_or_else(|| ApiError::BadRequest("instrument: required (e.g. binance:BTC/USDT)".into()))?;
    let timeframe = parse("timeframe", p.timeframe.as_deref(), str::parse::<Timeframe>)?
        .ok_or_else(|| ApiError::BadRequest("timeframe: required (e.g. 1h)".into()))?;
    let from = time("from", p.from.as_deref())?;
    let to = time("to", p.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::BadRequest("from: must be earlier than to".into()));
    }
    let cq = CandleQuery {
        instrument,
        timeframe,
        from,
        to,
        limit: number("limit", p.limit.as_deref(), 1000, 5000)?,
    };
    let rows = s.store.candles(&cq).await?;
    Ok(Json(json!({
        "instrument": instrument,
        "timeframe": timeframe,
        "count": rows.len(),
        "candles": rows,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertParams {
    since: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

async fn alerts(
    State(s): State<AppState>,
    q: Result<Query<AlertParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = query(q)?;
    let page = s
        .store
        .alerts(
            time("since", p.since.as_deref())?,
            number("page", p.page.as_deref(), 1, 1_000_000)?,
            number("per_page", p.per_page.as_deref(), 50, 1000)?,
        )
        .await?;
    Ok(Json(
        serde_json::to_value(page).map_err(|e| ApiError::Internal(Box::new(e)))?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnchainParams {
    chain: Option<String>,
    metric: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

/// On-chain readings, newest first: `?chain=bitcoin&metric=fee_fastest&since=…&limit=…`.
async fn onchain(
    State(s): State<AppState>,
    q: Result<Query<OnchainParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = query(q)?;
    let name = |field: &str, v: Option<String>| match v {
        Some(v)
            if v.is_empty()
                || v.len() > 64
                || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Err(ApiError::BadRequest(format!(
                "{field}: {v:?} is not a name"
            )))
        }
        v => Ok(v),
    };
    let oq = atalaya_store::OnchainQuery {
        chain: name("chain", p.chain)?,
        metric: name("metric", p.metric)?,
        since: time("since", p.since.as_deref())?,
        limit: number("limit", p.limit.as_deref(), 100, 1000)?,
    };
    let rows = s.store.onchain_metrics(&oq).await?;
    Ok(Json(json!({ "count": rows.len(), "metrics": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortfolioParams {
    limit: Option<String>,
}

/// The live paper portfolio and its latest closed trades (newest exit first).
async fn portfolio(
    State(s): State<AppState>,
    q: Result<Query<PortfolioParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = query(q)?;
    let limit = number("limit", p.limit.as_deref(), 50, 1000)?;
    let trades: Vec<Value> = s
        .store
        .paper_trades(limit)
        .await?
        .into_iter()
        .map(|r| serde_json::from_str(&r.body).unwrap_or(Value::Null))
        .collect();
    Ok(Json(json!({
        "portfolio": s.health.portfolio(),
        "trades": trades,
    })))
}
