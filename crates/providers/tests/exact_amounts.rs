//! Provider amounts are exact or refused naming their field, never rounded
//! (`docs/decisions.md` §31): PortOne's JSON float, iPint's decimal text, and PortOne's
//! signed test vectors (KRW `1234.5`) still parse as before.
#![allow(clippy::unwrap_used)]

use providers::Error;

fn field(e: Error) -> String {
    match e {
        Error::Malformed { field, .. } => field,
        other => format!("not malformed: {other:?}"),
    }
}

fn confirmation(amount: &str) -> Result<providers::portone::InventoryConfirmation, Error> {
    providers::portone::parse_inventory_confirmation(
        format!(r#"{{"portone_key":"k","merchant_order_ref":"o","portone_order_ref":"p","amount":{amount},"currency":"USD"}}"#)
            .as_bytes(),
    )
}

#[test]
fn portone_floats_are_exact_or_refused() {
    for amount in ["0.0000000000000000000000000000001", "1e-40", "1e300"] {
        match confirmation(amount) {
            Ok(c) => panic!("{amount} became {}", c.amount),
            Err(e) => assert_eq!(field(e), "amount", "{amount}"),
        }
    }
    for (amount, expected) in [("40", "40"), ("1234.50", "1234.5"), ("0.1", "0.1")] {
        match confirmation(amount) {
            Ok(c) => assert_eq!(c.amount.to_string(), expected),
            Err(e) => panic!("{amount}: {e:?}"),
        }
    }
}

#[test]
fn ipint_decimal_text_is_exact_or_refused() {
    let invoice = |amount: &str| {
        providers::ipint::parse_invoice(
            format!(r#"{{"data":{{"invoice_id":"i","transaction_status":"COMPLETED","received_crypto_amount":"{amount}"}}}}"#)
                .as_bytes(),
        )
    };
    match invoice("0.0000000000000000000000000000001") {
        Ok(i) => panic!("became {:?}", i.received_crypto_amount),
        Err(e) => assert_eq!(field(e), "data.received_crypto_amount"),
    }
    match invoice("0.00012345") {
        Ok(i) => assert_eq!(
            i.received_crypto_amount.map(|d| d.to_string()).as_deref(),
            Some("0.00012345")
        ),
        Err(e) => panic!("{e:?}"),
    }
}
