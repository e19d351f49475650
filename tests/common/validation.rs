//! A validator on migagent's own shadow: a history applied in a baseline template, and a
//! [`Validator`] for a reviewed migration on it (skipped without PostgreSQL, except in CI).

use migagent::advice::draft::Step;
use migagent::migration::{Section, Transaction};
use migagent::review::{self, ReviewOptions};
use migagent::shadow::session::{Shadow, ShadowMode, ShadowOptions};
use migagent::sql;
use migagent::validate::{Original, Validator};

use super::binaries_or_skip;

/// migagent's own shadow with the history applied in a baseline template.
pub struct Fixture {
    pub shadow: Shadow,
    pub baseline: String,
}

impl Fixture {
    pub fn with_history(history: &str) -> Option<Fixture> {
        binaries_or_skip()?;
        let options = ShadowOptions {
            mode: ShadowMode::Auto,
            cache: false,
            ..ShadowOptions::default()
        };
        let mut shadow = Shadow::open(&options, None)
            .expect("the shadow starts")
            .expect("PostgreSQL is installed");
        let database = shadow.create_database(None).unwrap();
        shadow
            .block_on(database.client.batch_execute(history))
            .unwrap();
        let baseline = shadow
            .seal_baseline(database, "history")
            .expect("the baseline seals");
        Some(Fixture { shadow, baseline })
    }

    /// Runs `check` with a validator for `original`, a migration its tool runs in one transaction,
    /// on the shadow's runtime.
    pub fn validator<T>(
        &mut self,
        original: &str,
        check: impl AsyncFnOnce(&mut Validator) -> T,
    ) -> T {
        let parsed = sql::parse_text(original);
        let sections = [Section {
            range: 0..original.len(),
            transaction: Transaction::Wrapped,
        }];
        let options = ReviewOptions::default();
        let rules = |catalog: &_, steps: &[Step]| review::step_errors(catalog, steps, &options);
        let mut validator = Validator::new(
            &self.shadow,
            &self.baseline,
            Original {
                text: original,
                parsed: &parsed,
                sections: &sections,
            },
            &rules,
        );
        self.shadow.block_on(check(&mut validator))
    }
}
