//! Every error the API can answer, mapped to HTTP and `application/problem+json`
//! (RFC 9457) in one place. Each carries a stable `code` clients can match on and the
//! request's id. A server-side cause (a database error, a bug) is kept for the log
//! line of that request and never shown to the client.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::request_id::current_request_id;
use crate::actors::keys::AuthFailure;
use crate::actors::CommandError;
use crate::domain::{InputError, Transfer};
use crate::store::{BoxError, StoreError};
use crate::views;

/// An error answer (`application/problem+json`, RFC 9457). `code` is the stable,
/// machine-readable reason; the other optional members appear where they apply.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:deltran:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:deltran:problem:limit_exceeded")]
    pub problem_type: String,
    /// The HTTP status's reason phrase.
    pub title: &'static str,
    pub status: u16,
    /// The stable reason clients match on; each route lists its codes.
    #[schema(example = "limit_exceeded")]
    pub code: &'static str,
    /// A sentence for people.
    pub detail: String,
    /// The request's id (also in the `X-Request-Id` header), to find it in the
    /// engine's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub request_id: Option<String>,
    /// The body field or query parameter at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub field: Option<&'static str>,
    /// The transfer concerned: a rejected one (stored), the one an idempotency key
    /// already names, or one that could not be stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub transaction_id: Option<String>,
    /// A rejected transfer as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub transfer: Option<views::TransferView>,
    /// With `rate_limited`: when to try again (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub retry_after_seconds: Option<u64>,
}

/// Seconds a client is asked to wait before retrying an overloaded or unavailable engine.
pub const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{error} ({field})")]
    Input {
        field: &'static str,
        error: InputError,
    },
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// An ISO 20022 message that cannot be taken in as a whole.
    #[error(transparent)]
    IsoMessage(#[from] crate::http::iso20022::MessageError),
    /// A screening list in CSV that cannot be taken in as a whole.
    #[error(transparent)]
    CsvInvalid(#[from] crate::http::screening::CsvError),
    #[error("{0}")]
    FieldMissing(String),
    #[error("{0}")]
    FieldInvalid(String),
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// 413: a batch holds more transfers than the engine takes in one.
    #[error("a batch holds at most {max} transfers; this one holds {count}")]
    BatchTooLarge { max: usize, count: usize },
    /// 422: a batch without a transfer.
    #[error("the batch holds no transfer")]
    BatchEmpty,
    #[error("the JSON body nests arrays and objects deeper than {0} levels")]
    JsonTooDeep(usize),
    #[error("the query string is longer than {0} bytes")]
    QueryTooLong(usize),
    #[error("the {field} {value} is not registered")]
    UnknownBank { field: &'static str, value: String },
    #[error("no corridor is registered for {0}")]
    CorridorUnknown(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the transfer was rejected: {}", .0.reject_code().map(|r| r.to_string()).unwrap_or_default())]
    Rejected(Box<Transfer>),
    #[error(
        "idempotency key {key} was already used by transfer {transaction_id} with a different body"
    )]
    IdempotencyKeyReused { key: String, transaction_id: String },
    /// The database refused the transfer's own data; it alone was not stored.
    #[error(
        "transfer {transaction_id} cannot be stored as submitted (the store refused its \
         data); it was not accepted and nothing of it was kept"
    )]
    TransferUnstorable { transaction_id: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InstructionNotPending(String),
    /// 409: the transfer is past the point where it may be cancelled.
    #[error("{0}")]
    TransferNotCancellable(String),
    /// 409: the transfer may not be returned (not netted or settled, or a return).
    #[error("{0}")]
    TransferNotReturnable(String),
    /// 409: only a held transfer is released or rejected.
    #[error("{0}")]
    TransferNotHeld(String),
    /// 409: a funds-out larger than the balance has free of the bank's exposure.
    #[error("{0}")]
    FundsOutExceedsFree(String),
    #[error("{0}")]
    QueryInvalid(String),
    /// 422: a report's range is well formed but longer, or holds more, than a report
    /// may read at once; the text says which bound.
    #[error("{0}")]
    RangeTooLarge(String),
    #[error("{}", match .0 {
        AuthFailure::Missing => "this route needs an API key: Authorization: Bearer <key>",
        AuthFailure::Invalid => "the API key is not one this engine issued",
        AuthFailure::Revoked => "the API key was revoked",
    })]
    Unauthenticated(AuthFailure),
    /// The caller is known but may not do this.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// 429: this caller (key or address) is over its rate; `Retry-After` says when
    /// it may try again.
    #[error("too many requests from this caller; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// 503 `overloaded`: the engine refuses work it cannot do in time; the text says
    /// which limit.
    #[error("{0}; retry shortly")]
    Overloaded(&'static str),
    /// 421: cluster mode, the bank is served by another partition's node and this
    /// route does not forward to it.
    #[error("{0}")]
    BankOnAnotherPartition(String),
    /// 503: cluster mode, the partition that owns the bank did not answer (its node
    /// is down or restarting, or its answer did not come in time): the same request
    /// with the same idempotency key may be sent again.
    #[error("{0}")]
    PartitionUnavailable(String),
    /// 503: `detail` is safe to show; `cause`, if any, only goes to the log.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        cause: Option<BoxError>,
    },
    /// 500: the cause only goes to the log.
    #[error("internal error; the request id identifies it in the engine's log")]
    Internal(BoxError),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Input { error, .. } => error.code(),
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::IsoMessage(e) => e.code(),
            ApiError::CsvInvalid(_) => "csv_invalid",
            ApiError::FieldMissing(_) => "field_missing",
            ApiError::FieldInvalid(_) => "field_invalid",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::BatchTooLarge { .. } => "batch_too_many_transfers",
            ApiError::BatchEmpty => "batch_empty",
            ApiError::JsonTooDeep(_) => "json_too_deep",
            ApiError::QueryTooLong(_) => "query_too_long",
            ApiError::UnknownBank { field, .. } => match *field {
                "sender_bank" => "sender_bank_unknown",
                "receiver_bank" => "receiver_bank_unknown",
                _ => "bank_unknown",
            },
            ApiError::CorridorUnknown(_) => "corridor_unknown",
            ApiError::NotFound(_) => "not_found",
            ApiError::Rejected(t) => t.reject_code().map(|r| r.code()).unwrap_or("rejected"),
            ApiError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            ApiError::TransferUnstorable { .. } => "transfer_unstorable",
            ApiError::AlreadyExists(_) => "already_exists",
            ApiError::InstructionNotPending(_) => "instruction_not_pending",
            ApiError::TransferNotCancellable(_) => "transfer_not_cancellable",
            ApiError::TransferNotReturnable(_) => "transfer_not_returnable",
            ApiError::TransferNotHeld(_) => "transfer_not_held",
            ApiError::FundsOutExceedsFree(_) => "funds_out_exceeds_free_balance",
            ApiError::QueryInvalid(_) => "query_invalid",
            ApiError::RangeTooLarge(_) => "range_too_large",
            ApiError::Unauthenticated(AuthFailure::Missing) => "unauthenticated",
            ApiError::Unauthenticated(AuthFailure::Invalid) => "key_invalid",
            ApiError::Unauthenticated(AuthFailure::Revoked) => "key_revoked",
            ApiError::Forbidden { code, .. } => code,
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::BankOnAnotherPartition(_) => "bank_on_another_partition",
            ApiError::PartitionUnavailable(_) => "partition_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Parses JSON text into `T`, telling malformed JSON from missing or mistyped fields.
    /// Every JSON body goes through here, so every route refuses one nested deeper than
    /// [`super::limits::JSON_DEPTH_MAX`] before serde sees it.
    pub fn parse_json<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> Result<T, ApiError> {
        super::limits::check_json_depth(body)?;
        serde_json::from_slice(body).map_err(ApiError::from_json)
    }

    /// A JSON text serde could not read into a type: malformed, or a field missing
    /// or of the wrong type.
    pub fn from_json(e: serde_json::Error) -> ApiError {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data if e.to_string().starts_with("missing field") => {
                ApiError::FieldMissing(e.to_string())
            }
            Category::Data => ApiError::FieldInvalid(e.to_string()),
            _ => ApiError::MalformedJson(e.to_string()),
        }
    }
}

impl ApiError {
    /// A 503 with a safe explanation and no cause to log.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ApiError::Unavailable {
            detail: detail.into(),
            cause: None,
        }
    }

    /// What went wrong on the server side, for the log (never for the client).
    pub fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Unavailable { cause, .. } => cause.as_deref().map(|c| c as _),
            ApiError::Internal(cause) => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable {
                detail: "the engine cannot reach its database right now".into(),
                cause: Some(Box::new(e)),
            },
            StoreError::Fenced(_) => ApiError::Unavailable {
                detail: "this node no longer runs the partition: another node took it over".into(),
                cause: Some(Box::new(e)),
            },
            StoreError::NotFound => ApiError::NotFound("resource".into()),
            StoreError::Duplicate(_) => ApiError::AlreadyExists("the resource exists".into()),
            StoreError::InstructionNotPending { .. } => {
                ApiError::InstructionNotPending(e.to_string())
            }
            StoreError::Corrupt(_) | StoreError::Query(_) => ApiError::Internal(Box::new(e)),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::NotFound(what) => ApiError::NotFound(what),
            CommandError::AlreadyExists(what) => ApiError::AlreadyExists(format!("{what} exists")),
            CommandError::BankUnknown { field, code } => ApiError::UnknownBank {
                field,
                value: code.to_string(),
            },
            CommandError::CorridorUnknown(id) => ApiError::CorridorUnknown(id.to_string()),
            CommandError::IdempotencyKeyReused {
                key,
                transaction_id,
            } => ApiError::IdempotencyKeyReused {
                key,
                transaction_id,
            },
            e @ CommandError::InstructionNotPending { .. } => {
                ApiError::InstructionNotPending(e.to_string())
            }
            CommandError::TransferUnstorable { transaction_id } => ApiError::TransferUnstorable {
                transaction_id: transaction_id.to_string(),
            },
            e @ CommandError::TransferNotCancellable { .. } => {
                ApiError::TransferNotCancellable(e.to_string())
            }
            e @ CommandError::CancelNotSender(_) => ApiError::Forbidden {
                code: "cancel_not_sender",
                detail: e.to_string(),
            },
            e @ CommandError::TransferNotReturnable { .. } => {
                ApiError::TransferNotReturnable(e.to_string())
            }
            e @ CommandError::TransferNotHeld { .. } => ApiError::TransferNotHeld(e.to_string()),
            e @ CommandError::ReturnNotReceiver(_) => ApiError::Forbidden {
                code: "return_not_receiver",
                detail: e.to_string(),
            },
            CommandError::Unavailable(detail) => ApiError::unavailable(detail),
            e @ CommandError::BankOnAnotherPartition { .. } => {
                ApiError::BankOnAnotherPartition(e.to_string())
            }
            e @ CommandError::CreditsBacklogged => ApiError::PartitionUnavailable(e.to_string()),
            e @ CommandError::FundsOutExceedsFree { .. } => {
                ApiError::FundsOutExceedsFree(e.to_string())
            }
            CommandError::Store(e) => e.into(),
        }
    }
}

impl ApiError {
    /// The problem this error answers (also one item's answer in a batch).
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let code = self.code();
        let mut problem = Problem {
            problem_type: format!("urn:deltran:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code,
            detail: self.to_string(),
            request_id: current_request_id().map(|id| id.as_str().to_string()),
            field: None,
            transaction_id: None,
            transfer: None,
            retry_after_seconds: None,
        };
        match self {
            ApiError::Input { field, .. } | ApiError::UnknownBank { field, .. } => {
                problem.field = Some(field);
            }
            ApiError::CsvInvalid(e) => problem.field = e.field,
            ApiError::Rejected(transfer) => {
                problem.transaction_id = Some(transfer.id.to_string());
                problem.transfer = Some(views::transfer(transfer));
            }
            ApiError::IdempotencyKeyReused { transaction_id, .. }
            | ApiError::TransferUnstorable { transaction_id } => {
                problem.transaction_id = Some(transaction_id.clone());
            }
            ApiError::RateLimited {
                retry_after_seconds,
            } => {
                problem.retry_after_seconds = Some(*retry_after_seconds);
            }
            _ => {}
        }
        problem
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Input { .. }
            | ApiError::UnknownBank { .. }
            | ApiError::CorridorUnknown(_)
            | ApiError::Rejected(_)
            | ApiError::RangeTooLarge(_)
            | ApiError::BatchEmpty
            | ApiError::CsvInvalid(_)
            | ApiError::TransferUnstorable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MalformedJson(_)
            | ApiError::FieldMissing(_)
            | ApiError::FieldInvalid(_)
            | ApiError::QueryInvalid(_)
            | ApiError::JsonTooDeep(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge(_)
            | ApiError::BatchTooLarge { .. }
            | ApiError::IsoMessage(crate::http::iso20022::MessageError::TooManyTransactions {
                ..
            }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::IsoMessage(crate::http::iso20022::MessageError::Xml(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::IsoMessage(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::QueryTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::IdempotencyKeyReused { .. }
            | ApiError::AlreadyExists(_)
            | ApiError::InstructionNotPending(_)
            | ApiError::TransferNotCancellable(_)
            | ApiError::TransferNotReturnable(_)
            | ApiError::TransferNotHeld(_)
            | ApiError::FundsOutExceedsFree(_) => StatusCode::CONFLICT,
            ApiError::BankOnAnotherPartition(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Overloaded(_)
            | ApiError::Unavailable { .. }
            | ApiError::PartitionUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let problem = self.problem();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS)));
        }
        if let ApiError::RateLimited {
            retry_after_seconds,
        } = self
        {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds)));
        }
        response.body(views::text(problem))
    }
}
