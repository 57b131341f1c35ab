//! (being written)

/// (being written)
#[derive(Debug, Default)]
pub struct Sends {}

/// Executes the schedules due at or before `until` (sends them as of their time). Called by
/// [`super::Workspace::advance_to`].
pub fn run_due_schedules(workspace: &mut super::Workspace, until: jiff::Timestamp) {
    let _ = (workspace, until);
}
