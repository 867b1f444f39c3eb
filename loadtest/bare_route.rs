//! The baseline for the submission benchmark: a bare actix-web route that parses a
//! transfer-sized JSON body exactly as the engine does (serde_json with exact numbers)
//! and answers 202 without any actor, rule or database. `loadtest/bench.sh` runs it
//! and the engine under the same load to report their ratio.
//!
//! `POST /api/v1/transfers/batch` is the baseline of the batch benchmark
//! (`loadtest/batch_bench.sh`): it reads a batch body as the engine does (the list,
//! then each transfer on its own) and answers a result per transfer.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[allow(dead_code)]
struct TransferBody {
    sender_bank: String,
    receiver_bank: String,
    amount: Value,
    from_currency: String,
    to_currency: String,
    idempotency_key: Option<String>,
}

async fn submit(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<TransferBody>(&body) {
        Ok(t) => HttpResponse::Accepted().json(json!({
            "status": "accepted",
            "sender_bank": t.sender_bank,
            "amount": t.amount.to_string(),
        })),
        Err(e) => HttpResponse::BadRequest().body(e.to_string()),
    }
}

#[derive(Deserialize)]
struct BatchBody<'a> {
    #[serde(borrow)]
    transfers: Vec<&'a RawValue>,
}

async fn submit_batch(body: web::Bytes) -> HttpResponse {
    let batch: BatchBody = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    let results: Vec<Value> = batch
        .transfers
        .iter()
        .enumerate()
        .map(
            |(index, item)| match serde_json::from_str::<TransferBody>(item.get()) {
                Ok(t) => json!({"index": index, "status": 202, "transfer": {
                    "status": "accepted",
                    "sender_bank": t.sender_bank,
                    "amount": t.amount.to_string(),
                }}),
                Err(e) => json!({"index": index, "status": 400, "detail": e.to_string()}),
            },
        )
        .collect();
    let succeeded = results.iter().filter(|r| r["status"] == 202).count();
    HttpResponse::Ok().json(json!({
        "succeeded": succeeded,
        "failed": results.len() - succeeded,
        "results": results,
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_string());
    let workers: usize = std::env::args()
        .nth(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    HttpServer::new(|| {
        App::new()
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .route("/api/v1/transfers", web::post().to(submit))
            .route("/api/v1/transfers/batch", web::post().to(submit_batch))
    })
    .workers(workers)
    .backlog(4096)
    .bind(listen)?
    .run()
    .await
}
