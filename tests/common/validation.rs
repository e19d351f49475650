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
        let baseline = seal(&mut shadow, history);
        Some(Fixture { shadow, baseline })
    }

    /// Replaces the baseline with a new one holding `history`, on the same server.
    pub fn set_history(&mut self, history: &str) {
        self.baseline = seal(&mut self.shadow, history);
    }

    /// Runs `check` with a validator for `original`, a migration its tool runs in one transaction,
    /// on the shadow's runtime.
    pub fn validator<T>(
        &mut self,
        original: &str,
        check: impl AsyncFnOnce(&mut Validator) -> T,
    ) -> T {
        self.validator_in(original, Transaction::Wrapped, check)
    }

    /// [`Fixture::validator`] for a migration its tool runs as `transaction` says.
    pub fn validator_in<T>(
        &mut self,
        original: &str,
        transaction: Transaction,
        check: impl AsyncFnOnce(&mut Validator) -> T,
    ) -> T {
        let parsed = sql::parse_text(original);
        let sections = [Section {
            range: 0..original.len(),
            transaction,
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

/// A new baseline database holding `history`, sealed as a template.
fn seal(shadow: &mut Shadow, history: &str) -> String {
    let database = shadow.create_database(None).unwrap();
    shadow
        .block_on(database.client.batch_execute(history))
        .unwrap_or_else(|e| panic!("the history applies: {e}\n{history}"));
    shadow
        .seal_baseline(database, "history")
        .expect("the baseline seals")
}
