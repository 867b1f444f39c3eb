//! Why the engine refuses or rejects something, as enums whose variants read as
//! sentences, each with a stable machine-readable `code` that clients match on.

/// Why input was refused. Each variant reads as a sentence and has a stable `code`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum InputError {
    #[error("a bank code is 2 to 11 upper-case letters or digits and not HUB")]
    BankCodeInvalid,
    #[error("sender and receiver must be different banks")]
    BanksMustBeDifferent,
    #[error("a currency code is three upper-case letters")]
    CurrencyCodeInvalid,
    #[error("the currency is not one the engine knows")]
    CurrencyUnknown,
    #[error("the amount is not a decimal number")]
    AmountInvalid,
    #[error("the amount must be greater than zero")]
    AmountMustBePositive,
    #[error("the amount has more decimals than its currency allows")]
    AmountHasTooManyDecimals,
    #[error("the amount is too large (at most 15 integer digits)")]
    AmountTooLarge,
    #[error("the FX rate is not a decimal number")]
    FxRateInvalid,
    #[error("the FX rate must be greater than zero")]
    FxRateMustBePositive,
    #[error("the FX rate has more than 8 decimals")]
    FxRateHasTooManyDecimals,
    #[error("the FX rate is too large (at most 6 integer digits)")]
    FxRateTooLarge,
    #[error("a same-currency corridor must have the rate 1")]
    SameCurrencyRateMustBeOne,
    #[error("a corridor id is two currency codes joined by '-', like INR-AED")]
    CorridorIdInvalid,
    #[error("a transaction id is a UUID")]
    TransferIdInvalid,
    #[error("a window id is a positive integer")]
    WindowIdInvalid,
    #[error("a status is 'active' or 'suspended'")]
    StatusInvalid,
    #[error("the text is longer than allowed")]
    TextTooLong,
    #[error("the text holds a control character (NUL, tab, line break or another C0/C1 control)")]
    TextInvalid,
    #[error("an idempotency key is 1 to 128 printable ASCII characters")]
    IdempotencyKeyInvalid,
    #[error("a net debit cap is a decimal number, zero or more, with the currency's decimals")]
    NetDebitCapInvalid,
    #[error("a key id is 32 hexadecimal digits (a UUID)")]
    KeyIdInvalid,
    #[error("a role is operator, bank or auditor")]
    RoleInvalid,
    #[error(
        "a fault's actor is bank, corridor, clock, window, writer, batch_completion or netting"
    )]
    FaultActorInvalid,
    #[error("this fault's actor takes no target")]
    FaultTargetUnexpected,
    #[error("on_limit is 'reject' or 'queue'")]
    OnLimitInvalid,
    #[error("a priority is 'normal' or 'high', and only a transfer with on_limit 'queue' has one")]
    PriorityInvalid,
    #[error("a BIC is 8 or 11 letters and digits: 4 for the institution, 2 letters for the country, 2 for the location, 3 optional for the branch")]
    BicInvalid,
    #[error("a country is an ISO 3166 alpha-2 code: two upper-case letters, such as IN or AE")]
    CountryInvalid,
    #[error("a party's name is 1 to 140 characters, not all blank")]
    PartyNameInvalid,
    #[error("a screening list is 'sanctions' or 'pep'")]
    ScreeningListInvalid,
    #[error("the list holds more items than allowed")]
    TooManyItems,
    #[error("a screening entry id is a positive integer")]
    ScreeningEntryIdInvalid,
}

impl InputError {
    /// The stable machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            InputError::BankCodeInvalid => "bank_code_invalid",
            InputError::BanksMustBeDifferent => "banks_must_be_different",
            InputError::CurrencyCodeInvalid => "currency_code_invalid",
            InputError::CurrencyUnknown => "currency_unknown",
            InputError::AmountInvalid => "amount_invalid",
            InputError::AmountMustBePositive => "amount_must_be_positive",
            InputError::AmountHasTooManyDecimals => "amount_has_too_many_decimals",
            InputError::AmountTooLarge => "amount_too_large",
            InputError::FxRateInvalid => "fx_rate_invalid",
            InputError::FxRateMustBePositive => "fx_rate_must_be_positive",
            InputError::FxRateHasTooManyDecimals => "fx_rate_has_too_many_decimals",
            InputError::FxRateTooLarge => "fx_rate_too_large",
            InputError::SameCurrencyRateMustBeOne => "same_currency_rate_must_be_one",
            InputError::CorridorIdInvalid => "corridor_id_invalid",
            InputError::TransferIdInvalid => "transaction_id_invalid",
            InputError::WindowIdInvalid => "window_id_invalid",
            InputError::StatusInvalid => "status_invalid",
            InputError::TextTooLong => "text_too_long",
            InputError::TextInvalid => "text_invalid",
            InputError::IdempotencyKeyInvalid => "idempotency_key_invalid",
            InputError::NetDebitCapInvalid => "net_debit_cap_invalid",
            InputError::KeyIdInvalid => "key_id_invalid",
            InputError::RoleInvalid => "role_invalid",
            InputError::FaultActorInvalid => "fault_actor_invalid",
            InputError::FaultTargetUnexpected => "fault_target_unexpected",
            InputError::OnLimitInvalid => "on_limit_invalid",
            InputError::PriorityInvalid => "priority_invalid",
            InputError::BicInvalid => "bic_invalid",
            InputError::CountryInvalid => "country_invalid",
            InputError::PartyNameInvalid => "party_name_invalid",
            InputError::ScreeningListInvalid => "screening_list_invalid",
            InputError::TooManyItems => "too_many_items",
            InputError::ScreeningEntryIdInvalid => "screening_entry_id_invalid",
        }
    }
}

/// Why an otherwise well-formed transfer was rejected. Stored with the transfer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RejectCode {
    #[error("the sender bank is suspended")]
    SenderBankSuspended,
    #[error("the receiver bank is suspended")]
    ReceiverBankSuspended,
    #[error("the corridor is suspended")]
    CorridorSuspended,
    #[error("the amount exceeds the corridor's per-transfer maximum")]
    AmountExceedsCorridorMaximum,
    #[error("the transfer would push the sender's net debit beyond its cap")]
    LimitExceeded,
    /// A prefunded sender (one with a settlement balance in the source currency):
    /// the transfer is within its cap but its net debit would pass its balance.
    #[error("the transfer would push the sender's net debit beyond its settlement balance")]
    LiquidityInsufficient,
    /// A return: more than is left of its original (what it credited, less what
    /// earlier returns took).
    #[error("the return exceeds what is left of its original")]
    ReturnExceedsOriginal,
    /// A partial return so small that at the original's rate it gives back nothing.
    #[error("the return is too small to give back a minor unit of the original's currency")]
    ReturnAmountTooSmall,
    /// Compliance screening: the debtor or creditor matches a screening list entry
    /// (strongly at submission, or the operator rejected a held transfer).
    #[error("compliance screening rejected the transfer")]
    ComplianceRejected,
}

impl RejectCode {
    pub const ALL: [RejectCode; 9] = [
        RejectCode::SenderBankSuspended,
        RejectCode::ReceiverBankSuspended,
        RejectCode::CorridorSuspended,
        RejectCode::AmountExceedsCorridorMaximum,
        RejectCode::LimitExceeded,
        RejectCode::LiquidityInsufficient,
        RejectCode::ReturnExceedsOriginal,
        RejectCode::ReturnAmountTooSmall,
        RejectCode::ComplianceRejected,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            RejectCode::SenderBankSuspended => "sender_bank_suspended",
            RejectCode::ReceiverBankSuspended => "receiver_bank_suspended",
            RejectCode::CorridorSuspended => "corridor_suspended",
            RejectCode::AmountExceedsCorridorMaximum => "amount_exceeds_corridor_maximum",
            RejectCode::LimitExceeded => "limit_exceeded",
            RejectCode::LiquidityInsufficient => "liquidity_insufficient",
            RejectCode::ReturnExceedsOriginal => "return_exceeds_original",
            RejectCode::ReturnAmountTooSmall => "return_amount_too_small",
            RejectCode::ComplianceRejected => "compliance_rejected",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}
