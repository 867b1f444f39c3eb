//! The flows the load generators send: every reference bank sends to a bank of the
//! other country. Shared by `loadgen` and `chaos` (`#[path]`-included).

pub const PAIRS: [(&str, &str, &str, &str); 5] = [
    ("ICICI", "ENBD", "INR", "AED"),
    ("HDFC", "ADCB", "INR", "AED"),
    ("AXIS", "ENBD", "INR", "AED"),
    ("ENBD", "ICICI", "AED", "INR"),
    ("ADCB", "HDFC", "AED", "INR"),
];
