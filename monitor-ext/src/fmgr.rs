//! The calling convention of the SQL functions: reading arguments and returning rows.
//!
//! The SQL signatures are hand-written in `sql/pgautofailover--2.0.sql` to match 2.0 exactly
//! (OUT parameters, `RETURNS record`, `RETURNS SETOF record`). The Rust side therefore uses
//! Postgres's version-1 calling convention directly: [`v1_function!`] exports the info symbol,
//! [`Args`] reads arguments, [`return_record`] and [`return_rows`] build results from the
//! result type the SQL declaration gives.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};

use fsm::ReplicationState;
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::errors::{raise, sql_error};

/// Exports `pg_finfo_<name>` so Postgres calls `<name>` with the version-1 convention.
macro_rules! v1_function {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}
pub(crate) use v1_function;

/// A value of a result column.
#[derive(Debug, Clone)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `int`.
    I32(i32),
    /// `bigint`.
    I64(i64),
    /// `boolean`.
    Bool(bool),
    /// `text` or `name`.
    Text(String),
    /// `pg_lsn`.
    Lsn(u64),
    /// `pgautofailover.replication_state`.
    State(ReplicationState),
}

/// The arguments of one call.
pub struct Args {
    fcinfo: pg_sys::FunctionCallInfo,
    function: &'static str,
}

impl Args {
    /// Wraps the call's `fcinfo`.
    ///
    /// # Safety
    /// `fcinfo` must be the pointer Postgres passed to the function.
    pub unsafe fn new(fcinfo: pg_sys::FunctionCallInfo, function: &'static str) -> Self {
        Args { fcinfo, function }
    }

    /// The raw `fcinfo`.
    pub fn fcinfo(&self) -> pg_sys::FunctionCallInfo {
        self.fcinfo
    }

    /// Number of arguments passed.
    pub fn count(&self) -> usize {
        // SAFETY: fcinfo is valid for the duration of the call
        usize::try_from(unsafe { (*self.fcinfo).nargs }).unwrap_or(0)
    }

    /// Whether argument `i` is NULL.
    pub fn is_null(&self, i: usize) -> bool {
        // SAFETY: fcinfo is valid for the duration of the call, i < nargs is checked by callers
        i >= self.count() || unsafe { pgrx::fcinfo::pg_arg_is_null(self.fcinfo, i) }
    }

    fn raw(&self, i: usize) -> Option<pg_sys::Datum> {
        if self.is_null(i) {
            None
        } else {
            // SAFETY: argument i exists and is not null
            Some(unsafe { pgrx::fcinfo::pg_getarg_datum_raw(self.fcinfo, i) })
        }
    }

    fn required<T>(&self, name: &str, value: Option<T>) -> T {
        match value {
            Some(v) => v,
            None => raise(sql_error(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("{}: argument {name} must not be NULL", self.function),
                None,
            )),
        }
    }

    /// Argument `i` as text, or None when NULL.
    pub fn opt_text(&self, i: usize) -> Option<String> {
        if self.is_null(i) {
            return None;
        }
        // SAFETY: argument i exists, is not null, and is declared text or name
        unsafe { pgrx::fcinfo::pg_getarg::<String>(self.fcinfo, i) }
    }

    /// Argument `i` of type `name`.
    pub fn opt_name(&self, i: usize) -> Option<String> {
        let datum = self.raw(i)?;
        // SAFETY: a `name` datum points to a NUL-terminated NameData
        let name = unsafe { CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>()) };
        Some(name.to_string_lossy().into_owned())
    }

    /// Argument `i` as bigint.
    pub fn opt_i64(&self, i: usize) -> Option<i64> {
        self.raw(i).map(|d| d.value() as i64)
    }

    /// Argument `i` as int.
    pub fn opt_i32(&self, i: usize) -> Option<i32> {
        self.raw(i).map(|d| d.value() as i32)
    }

    /// Argument `i` as boolean.
    pub fn opt_bool(&self, i: usize) -> Option<bool> {
        self.raw(i).map(|d| d.value() != 0)
    }

    /// Argument `i` as pg_lsn.
    pub fn opt_lsn(&self, i: usize) -> Option<u64> {
        self.raw(i).map(|d| d.value() as u64)
    }

    /// Argument `i` as a replication state.
    pub fn opt_state(&self, i: usize) -> Option<ReplicationState> {
        let oid = pg_sys::Oid::from(self.raw(i)?.value() as u32);
        Some(state_of_enum_oid(oid))
    }

    /// Required text argument.
    pub fn text(&self, i: usize, name: &str) -> String {
        self.required(name, self.opt_text(i))
    }

    /// Required name argument.
    pub fn name(&self, i: usize, name: &str) -> String {
        self.required(name, self.opt_name(i))
    }

    /// Required bigint argument.
    pub fn i64(&self, i: usize, name: &str) -> i64 {
        self.required(name, self.opt_i64(i))
    }

    /// Required int argument.
    pub fn i32(&self, i: usize, name: &str) -> i32 {
        self.required(name, self.opt_i32(i))
    }

    /// Required boolean argument.
    pub fn bool(&self, i: usize, name: &str) -> bool {
        self.required(name, self.opt_bool(i))
    }

    /// Required pg_lsn argument.
    pub fn lsn(&self, i: usize, name: &str) -> u64 {
        self.required(name, self.opt_lsn(i))
    }

    /// Required replication state argument.
    pub fn state(&self, i: usize, name: &str) -> ReplicationState {
        self.required(name, self.opt_state(i))
    }
}

thread_local! {
    static STATE_BY_OID: RefCell<HashMap<u32, ReplicationState>> = RefCell::new(HashMap::new());
    static OID_BY_STATE: RefCell<HashMap<(u32, ReplicationState), pg_sys::Oid>> =
        RefCell::new(HashMap::new());
}

/// The state an enum value OID stands for.
pub fn state_of_enum_oid(oid: pg_sys::Oid) -> ReplicationState {
    let key = oid.to_u32();
    if let Some(state) = STATE_BY_OID.with(|m| m.borrow().get(&key).copied()) {
        return state;
    }
    let (label, _, _) = pgrx::enum_helper::lookup_enum_by_oid(oid);
    let state = match label.parse::<ReplicationState>() {
        Ok(state) => state,
        Err(e) => raise(sql_error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
            None,
        )),
    };
    STATE_BY_OID.with(|m| m.borrow_mut().insert(key, state));
    state
}

/// The OID of the enum value `state` of enum type `type_oid`.
fn enum_oid(type_oid: pg_sys::Oid, state: ReplicationState) -> pg_sys::Oid {
    let key = (type_oid.to_u32(), state);
    if let Some(oid) = OID_BY_STATE.with(|m| m.borrow().get(&key).copied()) {
        return oid;
    }
    let label = CString::new(state.as_str()).unwrap_or_default();
    // SAFETY: syscache lookup by (type oid, label); the tuple is released below
    let oid = unsafe {
        let tuple = pg_sys::SearchSysCache2(
            pg_sys::SysCacheIdentifier::ENUMTYPOIDNAME as i32,
            pg_sys::Datum::from(type_oid),
            pg_sys::Datum::from(label.as_ptr()),
        );
        if tuple.is_null() {
            raise(sql_error(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                format!("replication state \"{state}\" is missing from the enum type"),
                Some("Reinstall the pgautofailover extension.".to_string()),
            ));
        }
        let form = pg_sys::GETSTRUCT(tuple) as pg_sys::Form_pg_enum;
        let oid = (*form).oid;
        pg_sys::ReleaseSysCache(tuple);
        oid
    };
    OID_BY_STATE.with(|m| m.borrow_mut().insert(key, oid));
    oid
}

/// The declared result row type of the current call.
fn result_tupdesc(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::TupleDesc {
    let mut tupdesc: pg_sys::TupleDesc = std::ptr::null_mut();
    // SAFETY: fcinfo is the current call's; tupdesc is an out parameter
    let class = unsafe { pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut tupdesc) };
    if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || tupdesc.is_null() {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "function returning a record called in a context that cannot accept a record"
                .to_string(),
            None,
        ));
    }
    tupdesc
}

/// Converts values to datums for `tupdesc`, checking the column count.
fn to_datums(tupdesc: pg_sys::TupleDesc, values: &[Value]) -> (Vec<pg_sys::Datum>, Vec<bool>) {
    // SAFETY: tupdesc is a valid tuple descriptor
    let natts = usize::try_from(unsafe { (*tupdesc).natts }).unwrap_or(0);
    if natts != values.len() {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "function result has {natts} columns, the monitor produced {}",
                values.len()
            ),
            Some("The extension's SQL and library do not match: reinstall it.".to_string()),
        ));
    }
    let mut datums = Vec::with_capacity(natts);
    let mut nulls = Vec::with_capacity(natts);
    for (i, value) in values.iter().enumerate() {
        let (datum, null) = match value {
            Value::Null => (pg_sys::Datum::from(0usize), true),
            Value::I32(v) => (pg_sys::Datum::from(*v), false),
            Value::I64(v) => (pg_sys::Datum::from(*v), false),
            Value::Bool(v) => (pg_sys::Datum::from(*v), false),
            Value::Lsn(v) => (pg_sys::Datum::from(*v), false),
            Value::Text(s) => (
                s.as_str()
                    .into_datum()
                    .unwrap_or(pg_sys::Datum::from(0usize)),
                false,
            ),
            Value::State(state) => {
                // SAFETY: i < natts, the attribute array has natts entries
                let type_oid = unsafe { (*tupdesc).attrs.as_slice(natts)[i].atttypid };
                (pg_sys::Datum::from(enum_oid(type_oid, *state)), false)
            }
        };
        datums.push(datum);
        nulls.push(null);
    }
    (datums, nulls)
}

/// Returns one row (`RETURNS record` with OUT parameters).
pub fn return_record(args: &Args, values: &[Value]) -> pg_sys::Datum {
    let tupdesc = result_tupdesc(args.fcinfo());
    // SAFETY: blessing registers the row type so the datum can be interpreted by the caller
    let tupdesc = unsafe { pg_sys::BlessTupleDesc(tupdesc) };
    let (mut datums, mut nulls) = to_datums(tupdesc, values);
    // SAFETY: datums and nulls have natts entries matching tupdesc
    unsafe {
        let tuple = pg_sys::heap_form_tuple(tupdesc, datums.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
    }
}

/// Returns a set of rows (`RETURNS SETOF record`) in materialize mode.
pub fn return_rows(args: &Args, rows: &[Vec<Value>]) -> pg_sys::Datum {
    let fcinfo = args.fcinfo();
    // SAFETY: fcinfo is the current call's; InitMaterializedSRF checks the caller accepts a
    // materialized set and errors out otherwise
    unsafe {
        pg_sys::InitMaterializedSRF(fcinfo, 0);
        let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
        for row in rows {
            let (mut datums, mut nulls) = to_datums((*rsinfo).setDesc, row);
            pg_sys::tuplestore_putvalues(
                (*rsinfo).setResult,
                (*rsinfo).setDesc,
                datums.as_mut_ptr(),
                nulls.as_mut_ptr(),
            );
        }
    }
    pg_sys::Datum::from(0usize)
}

/// Returns a boolean.
pub fn return_bool(value: bool) -> pg_sys::Datum {
    pg_sys::Datum::from(value)
}

/// Returns a text value.
pub fn return_text(value: &str) -> pg_sys::Datum {
    value.into_datum().unwrap_or(pg_sys::Datum::from(0usize))
}

/// Returns void.
pub fn return_void() -> pg_sys::Datum {
    pg_sys::Datum::from(0usize)
}
