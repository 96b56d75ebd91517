//! The catalogue against `sql/pgautofailover--2.0.sql`: every C function declared there is in
//! [`api::FUNCTIONS`] with the same name, arguments (names, types, order) and result columns,
//! and nothing else is.

use super::*;

const SQL: &str = include_str!("../../../sql/pgautofailover--2.0.sql");

/// One `CREATE FUNCTION pgautofailover.… LANGUAGE C` of the SQL file.
#[derive(Debug)]
struct Declared {
    name: String,
    symbol: String,
    args: Vec<Column>,
    out: Vec<Column>,
}

fn sql_type(word: &str) -> SqlType {
    match word {
        "text" => SqlType::Text,
        "name" => SqlType::Name,
        "int" | "integer" => SqlType::Int,
        "bigint" => SqlType::BigInt,
        "bool" | "boolean" => SqlType::Bool,
        "pg_lsn" => SqlType::PgLsn,
        "pgautofailover.replication_state" => SqlType::State,
        other => panic!("a type the catalogue does not know: {other}"),
    }
}

/// Leaks a parsed name: the catalogue's columns hold `&'static str`.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn declared_c_functions() -> Vec<Declared> {
    let marker = "CREATE FUNCTION pgautofailover.";
    let mut found = Vec::new();
    let mut rest = SQL;
    while let Some(at) = rest.find(marker) {
        rest = &rest[at + marker.len()..];
        let open = rest.find('(').expect("an argument list");
        let name = rest[..open].trim().to_string();
        let mut depth = 0;
        let mut close = open;
        for (i, c) in rest[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let params = &rest[open + 1..close];
        let end = rest[close..].find(';').map_or(rest.len(), |e| close + e);
        let tail = &rest[close..end];
        let Some(symbol_at) = tail.find("'MODULE_PATHNAME', '") else {
            continue; // a SQL or plpgsql function
        };
        let symbol = tail[symbol_at + 20..]
            .split('\'')
            .next()
            .expect("a symbol")
            .to_string();
        let mut args = Vec::new();
        let mut out = Vec::new();
        for param in params.split(',') {
            let words: Vec<&str> = param.split_whitespace().collect();
            match words.as_slice() {
                ["IN", name, ty, ..] => args.push(Column::new(leak(name), sql_type(ty))),
                ["OUT", name, ty, ..] => out.push(Column::new(leak(name), sql_type(ty))),
                [] => {}
                other => panic!("{name}: an argument without IN or OUT: {other:?}"),
            }
        }
        found.push(Declared {
            name,
            symbol,
            args,
            out,
        });
    }
    found
}

#[test]
fn the_catalogue_is_what_sql_declares() {
    let declared = declared_c_functions();
    assert!(declared.len() >= 20, "{declared:#?}");
    for d in &declared {
        let f = api::FUNCTIONS
            .iter()
            .find(|f| f.symbol == d.symbol)
            .unwrap_or_else(|| panic!("{} is declared, not in the catalogue", d.symbol));
        assert_eq!(f.name, d.name, "{}", d.symbol);
        assert!(
            f.args.starts_with(&d.args),
            "{}: sql/ declares {:?}, the catalogue has {:?}",
            d.symbol,
            d.args,
            f.args
        );
        assert_eq!(f.out, d.out.as_slice(), "{}: result columns", d.symbol);
    }
    for f in api::FUNCTIONS {
        let longest = declared
            .iter()
            .filter(|d| d.symbol == f.symbol)
            .map(|d| d.args.len())
            .max()
            .unwrap_or_else(|| panic!("{} is in the catalogue, not declared", f.symbol));
        assert_eq!(
            longest,
            f.args.len(),
            "{}: every argument declared",
            f.symbol
        );
    }
}

#[test]
fn typed_arguments_sit_where_the_catalogue_lists_them() {
    for f in api::FUNCTIONS {
        let names: Vec<&str> = f.args.iter().map(|a| a.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            names.len(),
            "{}: argument names unique",
            f.name
        );
    }
    use api::node_active as n;
    assert_eq!(n::CURRENT_LSN.index, 6);
    assert_eq!(
        n::FUNCTION.args[n::CURRENT_LSN.index],
        n::CURRENT_LSN.info()
    );
    assert_eq!(
        n::FUNCTION.args[n::FORMATION_ID.index].sql_type,
        SqlType::Text
    );
}

#[test]
fn calls_cast_the_extensions_types_from_text() {
    assert_eq!(
        api::node_active::FUNCTION.call(),
        "pgautofailover.node_active($1, $2, $3, $4::text::pgautofailover.replication_state, \
         $5, $6, $7::text::pg_lsn, $8)"
    );
    assert_eq!(
        api::node_active::FUNCTION.select(),
        "SELECT assigned_node_id, assigned_group_id, assigned_group_state::text, \
         assigned_candidate_priority, assigned_replication_quorum FROM \
         pgautofailover.node_active($1, $2, $3, $4::text::pgautofailover.replication_state, \
         $5, $6, $7::text::pg_lsn, $8)"
    );
    assert_eq!(
        api::get_other_nodes::FUNCTION.call_with(1),
        "pgautofailover.get_other_nodes($1)"
    );
}

#[test]
fn names_and_error_codes() {
    assert_eq!(standby_name(12), "pgautofailover_standby_12");
    assert_eq!(sqlstate(ErrorClass::ObjectInUse), "55006");
    assert!(is_retryable(sqlstate(ErrorClass::ObjectInUse)));
    assert!(is_retryable("55P03"));
    for class in [
        ErrorClass::InvalidParameterValue,
        ErrorClass::UndefinedObject,
        ErrorClass::InvalidObjectDefinition,
        ErrorClass::ObjectNotInPrerequisiteState,
        ErrorClass::FeatureNotSupported,
        ErrorClass::UniqueViolation,
        ErrorClass::Internal,
    ] {
        assert!(!is_retryable(sqlstate(class)), "{class:?}");
        assert_eq!(sqlstate(class).len(), 5);
    }
}
