//! The baseline for the submission benchmark: a bare actix-web route that parses a
//! transfer-sized JSON body exactly as the engine does (serde_json with exact numbers)
//! and answers 202 without any actor, rule or database. `loadtest/bench.sh` runs it
//! and the engine under the same load to report their ratio.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_string());
    let workers: usize = std::env::args()
        .nth(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    HttpServer::new(|| App::new().route("/api/v1/transfers", web::post().to(submit)))
        .workers(workers)
        .backlog(4096)
        .bind(listen)?
        .run()
        .await
}
