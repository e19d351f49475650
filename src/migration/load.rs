//! Reading one migration as text and cutting it into the sections its tool executes.

use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Range;
use std::path::Path;

use super::text::body_start;
use super::{atlas, dbmate, diesel, flyway, liquibase, numbered};
use super::{DiscoverOptions, LoadError, Migration, MigrationRef, Section, Tool, Transaction};

pub(super) fn load(
    migration: &MigrationRef,
    tool: Tool,
    options: &DiscoverOptions,
    max_bytes: u64,
) -> Result<Migration, LoadError> {
    let text = read_text(&migration.path, max_bytes)?;
    let body = body_start(&text)..text.len();
    let sections = sections(tool, &migration.path, &text, body, options);
    Ok(Migration {
        path: migration.path.clone(),
        tool,
        text,
        sections,
    })
}

/// Reads a file that must be UTF-8 text of at most `max_bytes`. The size is checked before reading,
/// and the read itself stops past the limit in case the file grows meanwhile.
fn read_text(path: &Path, max_bytes: u64) -> Result<String, LoadError> {
    let io_error = |err: io::Error| LoadError::Io(err.to_string());
    // Opening a FIFO would block until a writer comes: only regular files are opened.
    if !fs::metadata(path).map_err(io_error)?.is_file() {
        return Err(LoadError::Io("not a regular file".to_owned()));
    }
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    let too_large = |bytes| LoadError::TooLarge {
        bytes,
        limit: max_bytes,
    };
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > max_bytes {
        return Err(too_large(read));
    }
    if bytes.contains(&0) {
        return Err(LoadError::Binary);
    }
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        invalid_utf8_at(valid)
    })
}

/// The 1-based position of the byte after `valid`, the valid UTF-8 prefix of a file: its line, and
/// its column counted in characters of that line.
fn invalid_utf8_at(valid: &[u8]) -> LoadError {
    let line_start = valid
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let is_char_start = |b: &&u8| (**b & 0xC0) != 0x80;
    LoadError::InvalidUtf8 {
        line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        column: valid[line_start..].iter().filter(is_char_start).count() + 1,
    }
}

/// The parts of `text` the tool executes; `body` is the text after any byte order mark.
fn sections(
    tool: Tool,
    path: &Path,
    text: &str,
    body: Range<usize>,
    options: &DiscoverOptions,
) -> Vec<Section> {
    let whole = |transaction| {
        vec![Section {
            range: body.clone(),
            transaction,
        }]
    };
    match tool {
        Tool::Plain if options.plain_per_file_transaction => whole(Transaction::Wrapped),
        Tool::Plain => whole(Transaction::None),
        Tool::Prisma | Tool::GolangMigrate => whole(Transaction::ImplicitMultiStatement),
        Tool::Drizzle | Tool::Supabase => whole(Transaction::Wrapped),
        Tool::Sqlx => whole(numbered::sqlx_transaction(text)),
        Tool::Atlas => whole(atlas::transaction(&text[body.clone()])),
        Tool::Diesel => whole(diesel::transaction(path)),
        Tool::Flyway => whole(flyway::transaction(path, &text[body.clone()])),
        Tool::Dbmate => dbmate::sections(text, body),
        Tool::Liquibase => liquibase::sections(text, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_position_counts_lines_and_characters() {
        assert_eq!(
            invalid_utf8_at(b""),
            LoadError::InvalidUtf8 { line: 1, column: 1 }
        );
        assert_eq!(
            invalid_utf8_at("SELECT 1;\n-- é".as_bytes()),
            LoadError::InvalidUtf8 { line: 2, column: 5 }
        );
    }
}
