//! Why a request to the state machine is refused.
//!
//! Every variant says what is wrong and, where there is one, what to do. The monitor maps each
//! [`ErrorClass`] to a SQLSTATE so that clients can branch on the code, not on the text.

use crate::model::NodeId;

/// The kind of refusal, which the monitor maps to a SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 22023 invalid_parameter_value.
    InvalidParameterValue,
    /// 42704 undefined_object.
    UndefinedObject,
    /// 42P17 invalid_object_definition (2.0 uses it for a missing formation).
    InvalidObjectDefinition,
    /// 55000 object_not_in_prerequisite_state.
    ObjectNotInPrerequisiteState,
    /// 55006 object_in_use: try again in a moment.
    ObjectInUse,
    /// 0A000 feature_not_supported.
    FeatureNotSupported,
    /// 23505 unique_violation: the node's host and port, name or id is taken.
    UniqueViolation,
    /// XX000 internal_error.
    Internal,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsmError {
    /// The node id is not in the group the decision is about.
    #[error("couldn't find node with nodeid {node_id}")]
    NodeNotFound {
        /// The id asked for.
        node_id: NodeId,
    },
    /// A value is out of its allowed range or set.
    #[error("{message}")]
    InvalidValue {
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The group is not in a state that allows the request.
    #[error("{message}")]
    NotInPrerequisiteState {
        /// What is wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// The request cannot be served right now but may succeed when retried.
    #[error("{message}")]
    RetryLater {
        /// What is wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// What the request names is taken by another node.
    #[error("{message}")]
    AlreadyExists {
        /// What is taken, by whom.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// A formation that does not exist.
    #[error("formation {} does not exist", crate::vocab::shown(.formation_id))]
    FormationNotFound {
        /// The formation asked for.
        formation_id: String,
    },
    /// The group has no node.
    #[error("no nodes found in group {group_id} of formation \"{formation_id}\"")]
    EmptyGroup {
        /// The formation.
        formation_id: String,
        /// The group.
        group_id: i32,
    },
    /// Something this monitor does not implement.
    #[error("{0}")]
    NotSupported(String),
    /// A broken invariant: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl FsmError {
    /// The SQLSTATE class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            FsmError::NodeNotFound { .. } => ErrorClass::UndefinedObject,
            FsmError::InvalidValue { .. } => ErrorClass::InvalidParameterValue,
            FsmError::NotInPrerequisiteState { .. } => ErrorClass::ObjectNotInPrerequisiteState,
            FsmError::RetryLater { .. } => ErrorClass::ObjectInUse,
            FsmError::AlreadyExists { .. } => ErrorClass::UniqueViolation,
            FsmError::FormationNotFound { .. } | FsmError::EmptyGroup { .. } => {
                ErrorClass::InvalidObjectDefinition
            }
            FsmError::NotSupported(_) => ErrorClass::FeatureNotSupported,
            FsmError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// A hint for the user, when there is one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            FsmError::NotInPrerequisiteState { hint, .. }
            | FsmError::RetryLater { hint, .. }
            | FsmError::AlreadyExists { hint, .. } => hint.as_deref(),
            FsmError::FormationNotFound { .. } => Some(
                "Create it first with pg_autoctl create formation, or use the 'default' formation.",
            ),
            _ => None,
        }
    }

    /// Shorthand for [`FsmError::InvalidValue`].
    pub fn invalid(message: impl Into<String>) -> Self {
        FsmError::InvalidValue {
            message: message.into(),
        }
    }

    /// Shorthand for [`FsmError::NotInPrerequisiteState`].
    pub fn not_ready(message: impl Into<String>, hint: Option<&str>) -> Self {
        FsmError::NotInPrerequisiteState {
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }
}
