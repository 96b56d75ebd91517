//! The calling convention of the SQL functions: reading arguments and returning rows.
//!
//! The SQL signatures are hand-written in `sql/pgautofailover--2.0.sql` to match 2.0 exactly
//! (OUT parameters, `RETURNS record`, `RETURNS SETOF record`). The Rust side therefore uses
//! Postgres's version-1 calling convention directly: [`v1_function!`] exports the info symbol,
//! [`Args`] reads arguments, [`return_record`] and [`return_rows`] build results from the
//! result type the SQL declaration gives.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

use fsm::ReplicationState;
use fsm::protocol::{Arg, WireType, types};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::errors::{raise, sql_error};

/// Exports SQL functions with Postgres's version-1 calling convention. For each line
/// `symbol, info_symbol => "sql_name", function;` it exports `info_symbol` (the
/// `pg_finfo_<symbol>` record saying "version 1") and `symbol`, the C entry point named in
/// `sql/` (`AS 'MODULE_PATHNAME', 'symbol'`), which wraps the call in [`Args`] and calls the
/// safe `function(&Args) -> Datum`. The one table of these is in `crate::api`.
macro_rules! sql_functions {
    ($($symbol:ident, $finfo:ident => $sql_name:literal, $function:path;)*) => {
        $(
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                const V1: ::pgrx::pg_sys::Pg_finfo_record =
                    ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }

            #[doc = concat!("The C entry point of `pgautofailover.", $sql_name, "`.")]
            #[::pgrx::pg_guard]
            #[unsafe(no_mangle)]
            pub extern "C-unwind" fn $symbol(
                fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
            ) -> ::pgrx::pg_sys::Datum {
                // SAFETY: Postgres calls this entry point with the call's valid fcinfo
                let args = unsafe { $crate::fmgr::Args::new(fcinfo, $sql_name) };
                $function(&args)
            }
        )*
    };
}
pub(crate) use sql_functions;

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
    /// `text`.
    Text(String),
    /// `name` (at most 63 bytes are kept, cut at a character boundary, as Postgres does).
    Name(String),
    /// `pg_lsn`.
    Lsn(u64),
    /// `pgautofailover.replication_state`.
    State(ReplicationState),
}

/// The arguments of one call.
pub struct Args {
    fcinfo: pg_sys::FunctionCallInfo,
    function: &'static str,
    declared: Rc<Signature>,
    /// Each argument passed: None when NULL.
    values: Vec<Option<pg_sys::Datum>>,
}

/// What `pg_proc` declares for a function: argument types and result type.
struct Signature {
    arguments: Vec<pg_sys::Oid>,
    result: pg_sys::Oid,
}

thread_local! {
    /// The declared argument types of each function called so far, by function OID.
    static SIGNATURES: RefCell<HashMap<u32, Rc<Signature>>> = RefCell::new(HashMap::new());
    /// Whether a type is the replication state enum, by type OID.
    static ENUM_TYPES: RefCell<HashMap<u32, bool>> = RefCell::new(HashMap::new());
}

/// The signature `pg_proc` declares for the function `fn_oid`.
fn declared_signature(fn_oid: pg_sys::Oid) -> Rc<Signature> {
    if let Some(found) = SIGNATURES.with(|s| s.borrow().get(&fn_oid.to_u32()).cloned()) {
        return found;
    }
    let mut types: *mut pg_sys::Oid = std::ptr::null_mut();
    let mut count: std::ffi::c_int = 0;
    // SAFETY: a syscache lookup of the function; it fills a palloc'd array of `count` OIDs
    let declared = unsafe {
        let result = pg_sys::get_func_signature(fn_oid, &mut types, &mut count);
        let count = usize::try_from(count).unwrap_or(0);
        let arguments = if types.is_null() || count == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(types, count).to_vec()
        };
        Rc::new(Signature { arguments, result })
    };
    SIGNATURES.with(|s| s.borrow_mut().insert(fn_oid.to_u32(), declared.clone()));
    declared
}

/// Whether `type_oid` is the extension's replication state enum.
fn is_state_type(type_oid: pg_sys::Oid) -> bool {
    if let Some(known) = ENUM_TYPES.with(|e| e.borrow().get(&type_oid.to_u32()).copied()) {
        return known;
    }
    let found = type_oid == pgrx::regtypein(STATE_TYPE);
    ENUM_TYPES.with(|e| e.borrow_mut().insert(type_oid.to_u32(), found));
    found
}

/// A type's SQL name, for error messages.
fn type_name(type_oid: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.format_type($1, NULL)",
        &[type_oid.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| format!("type {}", type_oid.to_u32()))
}

/// The SQL type a Rust accessor or value stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlType {
    Int4,
    Int8,
    Bool,
    Text,
    Name,
    Lsn,
    State,
    Void,
}

impl SqlType {
    fn matches(self, type_oid: pg_sys::Oid) -> bool {
        let builtin = |b: pg_sys::BuiltinOid| type_oid == pg_sys::Oid::from(b);
        match self {
            SqlType::Int4 => builtin(pg_sys::BuiltinOid::INT4OID),
            SqlType::Int8 => builtin(pg_sys::BuiltinOid::INT8OID),
            SqlType::Bool => builtin(pg_sys::BuiltinOid::BOOLOID),
            SqlType::Text => builtin(pg_sys::BuiltinOid::TEXTOID),
            SqlType::Name => builtin(pg_sys::BuiltinOid::NAMEOID),
            SqlType::Lsn => builtin(pg_sys::BuiltinOid::PG_LSNOID),
            SqlType::State => is_state_type(type_oid),
            SqlType::Void => builtin(pg_sys::BuiltinOid::VOIDOID),
        }
    }

    fn sql(self) -> &'static str {
        match self {
            SqlType::Int4 => "integer",
            SqlType::Int8 => "bigint",
            SqlType::Bool => "boolean",
            SqlType::Text => "text",
            SqlType::Name => "name",
            SqlType::Lsn => "pg_lsn",
            SqlType::State => "pgautofailover.replication_state",
            SqlType::Void => "void",
        }
    }
}

/// Raises the error for a declaration that does not match what the library reads or writes.
fn mismatch(function: &str, what: &str, declared: pg_sys::Oid, library: SqlType) -> ! {
    raise(sql_error(
        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        format!(
            "{what} of pgautofailover.{function} is declared {}, the library uses {}",
            type_name(declared),
            library.sql()
        ),
        Some("The extension's SQL and library do not match: reinstall the extension.".to_string()),
    ))
}

impl Args {
    /// Wraps the call's `fcinfo`.
    ///
    /// # Safety
    /// `fcinfo` must be the pointer Postgres passed to the function.
    pub unsafe fn new(fcinfo: pg_sys::FunctionCallInfo, function: &'static str) -> Self {
        // SAFETY: the caller passes the call's fcinfo: its flinfo, nargs and the first nargs
        // arguments (null flag and datum) are valid for the duration of the call
        let (fn_oid, values) = unsafe {
            let count = usize::try_from((*fcinfo).nargs).unwrap_or(0);
            let values = (0..count)
                .map(|i| {
                    (!pgrx::fcinfo::pg_arg_is_null(fcinfo, i))
                        .then(|| pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, i))
                })
                .collect();
            ((*(*fcinfo).flinfo).fn_oid, values)
        };
        Args {
            fcinfo,
            function,
            declared: declared_signature(fn_oid),
            values,
        }
    }

    /// Checks that argument `i` is declared with the type the caller reads it as.
    fn check(&self, i: usize, expected: SqlType) {
        let declared = self
            .declared
            .arguments
            .get(i)
            .copied()
            .unwrap_or(pg_sys::Oid::INVALID);
        if !expected.matches(declared) {
            mismatch(
                self.function,
                &format!("argument {}", i + 1),
                declared,
                expected,
            );
        }
    }

    /// The raw `fcinfo`.
    pub fn fcinfo(&self) -> pg_sys::FunctionCallInfo {
        self.fcinfo
    }

    /// Number of arguments passed.
    pub fn count(&self) -> usize {
        self.values.len()
    }

    /// Whether argument `i` is NULL (or not passed).
    pub fn is_null(&self, i: usize) -> bool {
        self.raw(i).is_none()
    }

    fn raw(&self, i: usize) -> Option<pg_sys::Datum> {
        self.values.get(i).copied().flatten()
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
    fn opt_text(&self, i: usize) -> Option<String> {
        self.check(i, SqlType::Text);
        let datum = self.raw(i)?;
        // SAFETY: a non-null argument declared text (checked above)
        unsafe { String::from_datum(datum, false) }
    }

    /// Argument `i` of type `name`.
    fn opt_name(&self, i: usize) -> Option<String> {
        self.check(i, SqlType::Name);
        let datum = self.raw(i)?;
        // SAFETY: a `name` datum points to a NUL-terminated NameData
        let name = unsafe { CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>()) };
        Some(name.to_string_lossy().into_owned())
    }

    /// Argument `i` as bigint.
    fn opt_i64(&self, i: usize) -> Option<i64> {
        self.check(i, SqlType::Int8);
        self.raw(i).map(|d| d.value() as i64)
    }

    /// Argument `i` as int.
    fn opt_i32(&self, i: usize) -> Option<i32> {
        self.check(i, SqlType::Int4);
        self.raw(i).map(|d| d.value() as i32)
    }

    /// Argument `i` as boolean.
    fn opt_bool(&self, i: usize) -> Option<bool> {
        self.check(i, SqlType::Bool);
        self.raw(i).map(|d| d.value() != 0)
    }

    /// Argument `i` as pg_lsn.
    fn opt_lsn(&self, i: usize) -> Option<u64> {
        self.check(i, SqlType::Lsn);
        self.raw(i).map(|d| d.value() as u64)
    }

    /// Argument `i` as a replication state.
    fn opt_state(&self, i: usize) -> Option<ReplicationState> {
        self.check(i, SqlType::State);
        let oid = pg_sys::Oid::from(self.raw(i)?.value() as u32);
        Some(state_of_enum_oid(oid))
    }

    /// The typed argument `arg` of the catalogue (`fsm::protocol::api`); NULL is an error
    /// naming it.
    pub fn get<T: ArgType>(&self, arg: Arg<T>) -> T::Value {
        self.required(arg.name, T::read(self, arg.index))
    }

    /// The typed argument `arg`, or None when NULL.
    pub fn opt<T: ArgType>(&self, arg: Arg<T>) -> Option<T::Value> {
        T::read(self, arg.index)
    }
}

/// How an argument of a catalogue type is read: the Rust value each SQL type of
/// `fsm::protocol::types` becomes.
pub trait ArgType: WireType {
    /// The Rust value.
    type Value;
    /// Argument `i`, or None when NULL.
    fn read(args: &Args, i: usize) -> Option<Self::Value>;
}

/// Reads each catalogue type with the accessor of its Rust value.
macro_rules! arg_types {
    ($($marker:ident => $value:ty, $read:ident;)*) => {
        $(
            impl ArgType for types::$marker {
                type Value = $value;
                fn read(args: &Args, i: usize) -> Option<$value> {
                    args.$read(i)
                }
            }
        )*
    };
}

arg_types! {
    Text => String, opt_text;
    Name => String, opt_name;
    Int => i32, opt_i32;
    BigInt => i64, opt_i64;
    Bool => bool, opt_bool;
    PgLsn => u64, opt_lsn;
    State => ReplicationState, opt_state;
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

/// The SQL name of the replication state enum.
const STATE_TYPE: &str = "pgautofailover.replication_state";

/// The OID of the enum value `state` of enum type `type_oid`.
fn enum_oid(type_oid: pg_sys::Oid, state: ReplicationState) -> pg_sys::Oid {
    let key = (type_oid.to_u32(), state);
    if let Some(oid) = OID_BY_STATE.with(|m| m.borrow().get(&key).copied()) {
        return oid;
    }
    // the declared type is the extension's enum (checked by the caller's `SqlType::State`)
    let datum = pgrx::enum_helper::lookup_enum_by_label(STATE_TYPE, state.as_str());
    let oid = pg_sys::Oid::from(datum.value() as u32);
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

/// A `name` datum holding `value`, cut to 63 bytes at a character boundary.
fn name_datum(value: &str) -> pg_sys::Datum {
    let max = pg_sys::NAMEDATALEN as usize - 1;
    let mut end = value.len().min(max);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = &value.as_bytes()[..end];
    // SAFETY: palloc0 gives NAMEDATALEN zeroed bytes in the current memory context; at most 63
    // bytes are copied, so the value stays NUL-terminated
    unsafe {
        let data = pg_sys::palloc0(pg_sys::NAMEDATALEN as usize).cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        pg_sys::Datum::from(data)
    }
}

/// Converts values to datums for `tupdesc`: the column count and each column's declared type
/// must match the values (an ERROR names the first mismatch).
fn to_datums(
    function: &str,
    tupdesc: pg_sys::TupleDesc,
    values: &[Value],
) -> (Vec<pg_sys::Datum>, Vec<bool>) {
    // SAFETY: tupdesc is a valid tuple descriptor, whose attribute array has natts entries
    let attrs = unsafe {
        let natts = usize::try_from((*tupdesc).natts).unwrap_or(0);
        (*tupdesc).attrs.as_slice(natts)
    };
    let natts = attrs.len();
    if natts != values.len() {
        raise(sql_error(
            PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!(
                "pgautofailover.{function} is declared with {natts} result columns, the library \
                 produced {}",
                values.len()
            ),
            Some("The extension's SQL and library do not match: reinstall it.".to_string()),
        ));
    }
    let mut datums = Vec::with_capacity(natts);
    let mut nulls = Vec::with_capacity(natts);
    for (i, value) in values.iter().enumerate() {
        let declared = attrs[i].atttypid;
        let check = |library: SqlType| {
            if !library.matches(declared) {
                mismatch(
                    function,
                    &format!("result column {}", i + 1),
                    declared,
                    library,
                );
            }
        };
        let (datum, null) = match value {
            Value::Null => (pg_sys::Datum::from(0usize), true),
            Value::I32(v) => {
                check(SqlType::Int4);
                (pg_sys::Datum::from(*v), false)
            }
            Value::I64(v) => {
                check(SqlType::Int8);
                (pg_sys::Datum::from(*v), false)
            }
            Value::Bool(v) => {
                check(SqlType::Bool);
                (pg_sys::Datum::from(*v), false)
            }
            Value::Lsn(v) => {
                check(SqlType::Lsn);
                (pg_sys::Datum::from(*v), false)
            }
            Value::Text(s) => {
                check(SqlType::Text);
                (
                    s.as_str()
                        .into_datum()
                        .unwrap_or(pg_sys::Datum::from(0usize)),
                    false,
                )
            }
            Value::Name(s) => {
                check(SqlType::Name);
                (name_datum(s), false)
            }
            Value::State(state) => {
                check(SqlType::State);
                (pg_sys::Datum::from(enum_oid(declared, *state)), false)
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
    let (mut datums, mut nulls) = to_datums(args.function, tupdesc, values);
    // SAFETY: blessing registers the row type so the datum can be interpreted by the caller;
    // datums and nulls have natts entries matching tupdesc (checked by to_datums)
    unsafe {
        let tupdesc = pg_sys::BlessTupleDesc(tupdesc);
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
            let (mut datums, mut nulls) = to_datums(args.function, (*rsinfo).setDesc, row);
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

/// Checks that the function is declared to return `expected`.
fn check_result(args: &Args, expected: SqlType) {
    if !expected.matches(args.declared.result) {
        mismatch(args.function, "the result", args.declared.result, expected);
    }
}

/// Returns a boolean.
pub fn return_bool(args: &Args, value: bool) -> pg_sys::Datum {
    check_result(args, SqlType::Bool);
    pg_sys::Datum::from(value)
}

/// Returns a text value.
pub fn return_text(args: &Args, value: &str) -> pg_sys::Datum {
    check_result(args, SqlType::Text);
    value.into_datum().unwrap_or(pg_sys::Datum::from(0usize))
}

/// Returns void.
pub fn return_void(args: &Args) -> pg_sys::Datum {
    check_result(args, SqlType::Void);
    pg_sys::Datum::from(0usize)
}
