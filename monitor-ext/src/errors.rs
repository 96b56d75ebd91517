//! Turning refusals into Postgres errors with a SQLSTATE, and messages into NOTICE/WARNING.
//!
//! Every error the monitor raises goes through here: state machine refusals keep their class
//! as a SQLSTATE (so keepers can retry on `object_in_use` and stop on the others), the message
//! says what is wrong, the hint what to do.

use fsm::{ErrorClass, FsmError};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// An error report with a SQLSTATE, message and optional hint.
pub fn sql_error(code: PgSqlErrorCode, message: String, hint: Option<String>) -> ErrorReport {
    let report = ErrorReport::new(code, message, "pgautofailover");
    match hint {
        Some(hint) => report.set_hint(hint),
        None => report,
    }
}

/// Raises `report` as an ERROR: the transaction aborts, nothing it did is kept.
pub fn raise(report: ErrorReport) -> ! {
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// The SQLSTATE of a state machine refusal: the code `fsm::protocol::sqlstate` names (the
/// one list both sides read), packed as Postgres packs it (`MAKE_SQLSTATE`).
pub fn sqlstate(class: ErrorClass) -> PgSqlErrorCode {
    let packed = fsm::protocol::sqlstate(class)
        .bytes()
        .take(5)
        .enumerate()
        .fold(0_i32, |code, (i, c)| {
            code | ((i32::from(c.wrapping_sub(b'0')) & 0x3F) << (6 * i))
        });
    PgSqlErrorCode::from(packed)
}

/// Raises a state machine refusal as an ERROR.
pub fn raise_fsm(error: &FsmError) -> ! {
    raise(sql_error(
        sqlstate(error.class()),
        error.to_string(),
        error.hint().map(str::to_string),
    ))
}

/// Unwraps a state machine result, raising its error.
pub fn or_raise<T>(result: Result<T, FsmError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => raise_fsm(&error),
    }
}

/// Raises "unknown formation".
pub fn formation_not_found(formation_id: &str) -> ! {
    raise_fsm(&FsmError::FormationNotFound {
        formation_id: formation_id.to_string(),
    })
}

/// Raises an SPI failure as an internal error.
pub fn spi_failed(what: &str, error: pgrx::spi::Error) -> ! {
    raise(sql_error(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("could not {what}: {error}"),
        None,
    ))
}
