//! The held orphans (events seen before the event that starts their instance), as views.

use super::OrphanView;
use crate::engine::Engine;

impl Engine {
    /// Every group of held orphans, oldest first.
    pub fn orphans(&self) -> Vec<OrphanView> {
        let mut views: Vec<OrphanView> = self
            .orphan_groups
            .iter()
            .flatten()
            .map(|group| {
                let flow = usize::from(group.flow);
                OrphanView {
                    flow: self.names.flows[flow].to_string(),
                    alias: group
                        .route
                        .checked_sub(1)
                        .map(|alias| self.names.aliases[flow][usize::from(alias)].to_string()),
                    value: group.value.to_string(),
                    held: group.held() as u32,
                    events: group
                        .event_indices()
                        .map(|event| self.names.events[flow][usize::from(event)].to_string())
                        .collect(),
                    first: group.first(),
                    expires: group.first().saturating_add(self.config.orphan_after),
                }
            })
            .collect();
        views.sort_by(|a, b| (a.first, &a.flow, &a.value).cmp(&(b.first, &b.flow, &b.value)));
        views
    }
}
