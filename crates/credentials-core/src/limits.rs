//! The documented limits. Requests beyond them fail with INVALID_ARGUMENT naming the field.

/// Longest credential name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Largest value: the sum of field names and field values, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most fields in a value.
pub const MAX_FIELDS: usize = 32;
/// Longest field name, in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 64;
/// Page size when a request gives none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 500;
/// Largest gRPC request message, in bytes.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Longest workspace id, in bytes.
pub const MAX_WORKSPACE_ID_BYTES: usize = 64;

use crate::value::FieldViolation;
use unicode_normalization::UnicodeNormalization;

fn violation(field: &str, description: impl Into<String>) -> FieldViolation {
    FieldViolation {
        field: field.to_owned(),
        description: description.into(),
    }
}

/// Checks a credential name and returns it in Unicode NFC, the form it is stored and compared
/// in: 1-[`MAX_NAME_CHARS`] characters, no surrounding spaces, nothing invisible.
///
/// Names are how people pick a credential, so two names that render alike must not both exist:
/// NFC makes `Café` typed either way one name (the unique index then compares the stored form),
/// and characters that render as nothing or reorder text (zero-width, bidi controls, other
/// format and control characters, spaces other than U+0020) are refused outright.
pub fn check_name(name: &str) -> Result<String, FieldViolation> {
    let name: String = name.nfc().collect();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(violation(
            "name",
            format!("must be 1-{MAX_NAME_CHARS} characters, got {chars}"),
        ));
    }
    if let Some(c) = name.chars().find(|c| is_invisible(*c)) {
        return Err(violation(
            "name",
            format!(
                "must not contain invisible, control or bidi characters or spaces other than \
                 U+0020 (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    if name.trim() != name {
        return Err(violation("name", "must not start or end with spaces"));
    }
    if !plausible_scripts(&name) {
        return Err(violation(
            "name",
            "must not mix look-alike scripts (Latin with Cyrillic or Greek, or more than one \
             script besides Latin) or use letters Unicode restricts in identifiers",
        ));
    }
    Ok(name)
}

/// Whether the letters and digits of `name` pass Unicode's "moderately restrictive" profile
/// (UTS #39): one script, Latin with Han, Hiragana, Katakana or Hangul, or Latin with one other
/// recommended script that is not Cyrillic or Greek. That catches the cheap look-alikes (a
/// Cyrillic `о` in `Prоd`); names spelled wholly in a look-alike script are not caught.
fn plausible_scripts(name: &str) -> bool {
    use unicode_security::{RestrictionLevel, RestrictionLevelDetection};
    // Spaces, punctuation and symbols are outside the identifier profile; only letters and
    // digits carry a script.
    let letters: String = name.chars().filter(|c| c.is_alphanumeric()).collect();
    letters.as_str().detect_restriction_level() <= RestrictionLevel::ModeratelyRestrictive
}

/// Whether `c` renders as nothing, reorders text, or is a space that looks like U+0020: control
/// and format characters (zero-width, bidi, BOM, tags), private-use and unassigned code
/// points, line and paragraph separators, and the default-ignorable fillers and variation
/// selectors that Unicode classes as letters or marks.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
    c != ' ' && c.is_whitespace()
        || c.general_category_group() == GeneralCategoryGroup::Other
        || matches!(
            c.general_category(),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
        )
        || matches!(
            c,
            '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Checks a description: at most [`MAX_DESCRIPTION_CHARS`] characters; newlines and tabs are
/// the only control characters allowed.
pub fn check_description(description: &str) -> Result<(), FieldViolation> {
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(violation(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters, got {chars}"),
        ));
    }
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(violation(
            "description",
            "must not contain control characters other than newlines and tabs",
        ));
    }
    Ok(())
}

/// Checks a workspace id's form: 1-[`MAX_WORKSPACE_ID_BYTES`] bytes of `[A-Za-z0-9_.-]`.
pub fn check_workspace_id(workspace_id: &str) -> Result<(), FieldViolation> {
    let ok = !workspace_id.is_empty()
        && workspace_id.len() <= MAX_WORKSPACE_ID_BYTES
        && workspace_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(violation(
            "workspace_id",
            "must be 1-64 bytes of [A-Za-z0-9_.-]",
        ))
    }
}

/// A page size from a request: 0 means [`DEFAULT_PAGE_SIZE`]; more than [`MAX_PAGE_SIZE`] is
/// refused.
pub fn page_size(requested: i32) -> Result<usize, FieldViolation> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(violation("page_size", "must not be negative")),
        n if n as usize > MAX_PAGE_SIZE => Err(violation(
            "page_size",
            format!("must be at most {MAX_PAGE_SIZE}, got {n}"),
        )),
        n => Ok(n as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_nfc() {
        let nfd = "Cafe\u{301}";
        assert_eq!(check_name(nfd).unwrap(), "Caf\u{e9}");
        assert_eq!(check_name("Caf\u{e9}").unwrap(), "Caf\u{e9}");
        // Normalising can change the count: the limit is on the stored form.
        assert!(check_name(&"e\u{301}".repeat(128)).is_ok());
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused() {
        for bad in [
            "\u{200B}",
            "prod\u{200B}",
            "pro\u{200D}d",
            "\u{FEFF}prod",
            "prod\u{202E}dorp",
            "prod\u{2066}x\u{2069}",
            "prod\u{200E}",
            "prod\u{00AD}",
            "prod\u{2060}",
            "prod\u{E0041}",
            "pro\u{00A0}d",
            "pro\u{3000}d",
            "prod\u{2028}",
            "prod\u{3164}",
            "prod\u{FE0F}",
            "prod\u{E000}",
            "prod\u{0}",
            "prod\u{85}",
        ] {
            let err = check_name(bad).unwrap_err();
            assert_eq!(err.field, "name", "{bad:?}");
            assert!(err.description.contains("invisible"), "{bad:?}: {err}");
        }
        assert!(check_name("Prod \u{65e5}\u{672c} \u{1F511} key-1").is_ok());
    }

    #[test]
    fn mixed_script_look_alikes_are_refused() {
        for ok in [
            "Prod",
            "Caf\u{e9} cr\u{e8}me",
            "\u{41a}\u{43b}\u{44e}\u{447} 2",
            "\u{65e5}\u{672c} key (prod)",
            "\u{3b1}\u{3bb}\u{3c6}\u{3b1}",
            "\u{5de}\u{5e4}\u{5ea}\u{5d7} prod",
        ] {
            assert!(check_name(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "Pr\u{43e}d",
            "\u{440}aypal",
            "Prod \u{41a}\u{43b}\u{44e}\u{447}",
            "\u{3bf}penai",
            "\u{17f}ecret",
        ] {
            let err = check_name(bad).unwrap_err();
            assert_eq!(err.field, "name");
            assert!(err.description.contains("look-alike"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn names_and_descriptions() {
        assert!(check_name("OpenAI Production").is_ok());
        for bad in ["", " lead", "trail ", "tab\there", &"x".repeat(129)] {
            let err = check_name(bad).unwrap_err();
            assert_eq!(err.field, "name", "{bad:?}");
        }
        assert!(check_name(&"é".repeat(128)).is_ok());
        assert!(check_description("line one\nline two").is_ok());
        assert!(check_description(&"x".repeat(1025)).is_err());
        assert!(check_description("bell\u{7}").is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(500).unwrap(), 500);
        assert!(matches!(page_size(501), Err(v) if v.field == "page_size"));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn workspace_ids() {
        assert!(check_workspace_id("acme-prod_1.eu").is_ok());
        for bad in ["", "a b", "ümlaut", &"w".repeat(65)] {
            assert_eq!(check_workspace_id(bad).unwrap_err().field, "workspace_id");
        }
    }
}
