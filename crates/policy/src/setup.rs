//! [`Setup`]: what every policy needs from the use case, extracted once.

use std::sync::Arc;

use offerloop_domain::usecase::PolicySettings;
use offerloop_domain::{ActionSpace, ControlAction, FeatureSchema, JointAction, MetricKind, UseCase};

use crate::sampling::space_fingerprint;
use crate::{Error, Result};

/// The parts of a use case a policy decides and learns with. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Setup {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    space: ActionSpace,
    schema: FeatureSchema,
    settings: PolicySettings,
    metric: MetricKind,
    business_as_usual: Option<JointAction>,
    option_costs: Vec<Vec<f64>>,
    fingerprint: u64,
}

impl Setup {
    /// Extracts the setup of `use_case`.
    ///
    /// # Errors
    /// [`Error::Domain`] when the business-as-usual action names an unknown option (the configuration
    /// reader already refuses that, so only hand-built use cases hit it).
    pub fn from_use_case(use_case: &UseCase) -> Result<Self> {
        let business_as_usual = match use_case.holdout.control_action() {
            ControlAction::BusinessAsUsual { options } => Some(use_case.actions.action_from_names(options)?),
            ControlAction::NoMessage => None,
        };
        Self::new(
            use_case.actions.clone(),
            use_case.features.clone(),
            use_case.policy.clone(),
            use_case.metric.kind.clone(),
            business_as_usual,
        )
    }

    /// A setup from its parts (for library users without a use-case file).
    ///
    /// # Errors
    /// [`Error::Setting`] for an exploration floor that cannot hold (negative, or times the number of
    /// joint actions above 1) or a forgetting factor outside `(0, 1]`.
    pub fn new(
        space: ActionSpace,
        schema: FeatureSchema,
        settings: PolicySettings,
        metric: MetricKind,
        business_as_usual: Option<JointAction>,
    ) -> Result<Self> {
        if !(settings.exploration_floor >= 0.0 && settings.exploration_floor * (space.count() as f64) <= 1.0) {
            return Err(Error::Setting {
                setting: "exploration_floor",
                message: format!(
                    "{} for {} joint actions: the floors would add up to more than 1",
                    settings.exploration_floor,
                    space.count()
                ),
            });
        }
        if !(settings.forgetting_factor > 0.0 && settings.forgetting_factor <= 1.0) {
            return Err(Error::Setting {
                setting: "forgetting_factor",
                message: format!("{} is outside (0, 1]", settings.forgetting_factor),
            });
        }
        let option_costs = space
            .dimensions()
            .iter()
            .map(|d| d.options.iter().map(|o| o.cost).collect())
            .collect();
        let fingerprint = space_fingerprint(&space, &schema);
        Ok(Self {
            inner: Arc::new(Inner {
                space,
                schema,
                settings,
                metric,
                business_as_usual,
                option_costs,
                fingerprint,
            }),
        })
    }

    /// The action space.
    pub fn space(&self) -> &ActionSpace {
        &self.inner.space
    }

    /// The feature schema.
    pub fn schema(&self) -> &FeatureSchema {
        &self.inner.schema
    }

    /// The policy settings.
    pub fn settings(&self) -> &PolicySettings {
        &self.inner.settings
    }

    /// The success metric's kind.
    pub fn metric(&self) -> &MetricKind {
        &self.inner.metric
    }

    /// Whether rewards are 0/1 (conversion, retention, renewal) rather than amounts.
    pub fn binary_reward(&self) -> bool {
        self.inner.metric.is_binary()
    }

    /// Whether the reward already has the chosen options' costs subtracted (the metric's
    /// `subtract_option_cost`), so that `reward + cost` is what the customer brought in.
    pub fn reward_nets_option_cost(&self) -> bool {
        self.inner.metric.subtracts_option_cost()
    }

    /// The business-as-usual joint action, when the use case has one.
    pub fn business_as_usual(&self) -> Option<&JointAction> {
        self.inner.business_as_usual.as_ref()
    }

    /// The summed option costs of a joint action.
    pub fn cost(&self, action: &JointAction) -> f64 {
        action
            .0
            .iter()
            .enumerate()
            .map(|(d, &o)| self.option_cost(d, o as usize))
            .sum()
    }

    /// The cost of option `o` of dimension `d` (0 when it has none or is out of range).
    pub fn option_cost(&self, d: usize, o: usize) -> f64 {
        self.inner
            .option_costs
            .get(d)
            .and_then(|c| c.get(o))
            .copied()
            .unwrap_or(0.0)
    }

    /// The fingerprint of space and schema.
    pub fn fingerprint(&self) -> u64 {
        self.inner.fingerprint
    }
}
