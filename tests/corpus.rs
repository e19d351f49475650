//! Optional check on real migration histories (`../shared/corpus`, absent from users' clones): every
//! history is reviewed as a directory, and every `.sql` file (down files and seeds included) on its own,
//! without a panic, an input problem, or a locking finding on a table the same migration created; and
//! the histories that apply on PostgreSQL 15 replay on the shadow database.

use migagent::migration::{DiscoverOptions, Tool, Transaction};
use migagent::review::{review, review_sql, ReviewOptions};
use migagent::shadow::session::{ShadowMode, ShadowOptions};

mod common;

#[test]
fn every_history_reviews_cleanly() {
    let Some(corpus) = common::corpus_or_skip("every_history_reviews_cleanly") else {
        return;
    };
    let histories = [
        ("documenso__documenso", None),
        ("MarquezProject__marquez", None),
        ("ente-io__ente", None),
        ("Dokploy__dokploy", None),
        ("LemmyNet__lemmy", None),
        ("UPchieve__subway/migrations", None),
        ("UPchieve__subway/seed-updates", Some(Tool::Dbmate)),
        ("tutur3u__platform", Some(Tool::Supabase)),
    ];
    for (dir, tool) in histories {
        let options = ReviewOptions {
            discover: DiscoverOptions {
                tool,
                ..DiscoverOptions::default()
            },
            ..ReviewOptions::default()
        };
        let result = review(&[corpus.join(dir)], &options);
        assert!(result.problems.is_empty(), "{dir}: {:?}", result.problems);
        assert!(!result.migrations.is_empty(), "{dir}");
        let statements: usize = result.migrations.iter().map(|m| m.statements.len()).sum();
        let classified: usize = result
            .migrations
            .iter()
            .flat_map(|m| &m.statements)
            .filter(|s| s.classified)
            .count();
        assert!(
            classified as f64 >= 0.99 * statements as f64,
            "{dir}: only {classified} of {statements} statements classified"
        );
    }
}

#[test]
fn every_file_reviews_alone_without_panicking() {
    let Some(corpus) = common::corpus_or_skip("every_file_reviews_alone_without_panicking") else {
        return;
    };
    let mut files = Vec::new();
    common::sql_files(&corpus, &mut files);
    assert!(files.len() > 2900, "{} files", files.len());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let result = review_sql(
            &file.display().to_string(),
            &[],
            &text,
            Transaction::Wrapped,
            &ReviewOptions::default(),
        );
        for finding in &result.findings {
            assert!(
                finding.offset <= text.len(),
                "{}: {finding:?}",
                file.display()
            );
        }
    }
}

/// The histories that apply cleanly on PostgreSQL 15 (the corpus README says why the others do not)
/// replay on migagent's own shadow without a problem, and their last migration gets a trace: applied
/// as the least-privileged role (`migagent_apply`, no superuser), with no extension allowed beyond the
/// trusted ones (documenso's `pgcrypto` and `pg_trgm` are trusted).
#[test]
fn clean_histories_replay_on_the_shadow() {
    let Some(corpus) = common::corpus_or_skip("clean_histories_replay_on_the_shadow") else {
        return;
    };
    if common::binaries_or_skip().is_none() {
        return;
    }
    for dir in [
        "documenso__documenso",
        "MarquezProject__marquez",
        "ente-io__ente",
        "Dokploy__dokploy",
    ] {
        let options = ReviewOptions {
            discover: DiscoverOptions {
                latest: Some(1),
                ..DiscoverOptions::default()
            },
            shadow: ShadowOptions {
                mode: ShadowMode::Auto,
                pg_bin: None,
                cache: false,
                superuser: false,
                extensions: Vec::new(),
                ..ShadowOptions::default()
            },
            ..ReviewOptions::default()
        };
        let result = review(&[corpus.join(dir)], &options);
        assert!(result.problems.is_empty(), "{dir}: {:#?}", result.problems);
        assert!(result.shadow.is_some(), "{dir}: no shadow");
        let last = &result.migrations[0];
        assert!(
            last.statements.iter().all(|s| s.trace.is_some()),
            "{dir}: {} has untraced statements",
            last.path.display()
        );
        let failed: Vec<_> = last
            .findings
            .iter()
            .filter(|f| f.rule.id == "apply-failed")
            .map(|f| &f.message)
            .collect();
        assert!(failed.is_empty(), "{dir}: {failed:?}");
    }
}

/// A history PostgreSQL 15 cannot apply (Supabase's first migration needs the `pg_net` extension)
/// degrades to a static review saying so once, instead of failing the run; `shadow_required` keeps
/// it an error.
#[test]
fn a_history_the_shadow_cannot_apply_is_reviewed_statically() {
    let Some(corpus) =
        common::corpus_or_skip("a_history_the_shadow_cannot_apply_is_reviewed_statically")
    else {
        return;
    };
    if common::binaries_or_skip().is_none() {
        return;
    }
    let options = |shadow_required| ReviewOptions {
        discover: DiscoverOptions {
            latest: Some(1),
            ..DiscoverOptions::default()
        },
        shadow: ShadowOptions {
            mode: ShadowMode::Auto,
            pg_bin: None,
            cache: false,
            ..ShadowOptions::default()
        },
        shadow_required,
        ..ReviewOptions::default()
    };
    let dir = corpus.join("tutur3u__platform");
    let degraded = review(std::slice::from_ref(&dir), &options(false));
    assert!(degraded.problems.is_empty(), "{:#?}", degraded.problems);
    let said: Vec<_> = degraded
        .notices
        .iter()
        .filter(|n| n.message.contains("this history migration fails"))
        .collect();
    assert_eq!(said.len(), 1, "{:#?}", degraded.notices);
    assert!(said[0].message.contains("pg_net"), "{}", said[0].message);
    assert!(
        said[0].message.contains("--shadow URL"),
        "{}",
        said[0].message
    );
    assert_eq!(degraded.migrations.len(), 1);
    assert!(degraded.shadow.is_none(), "nothing reviewed was traced");

    let required = review(&[dir], &options(true));
    assert_eq!(required.problems.len(), 1, "{:#?}", required.problems);
    assert!(required.problems[0].message.contains("pg_net"));
}
