//! Where a mistake in a scenario file is, in words a contributor can act on: the line and column
//! of the offending field, its name, what it takes, and "did you mean" for a misspelt name.
//!
//! toml reads `[[steps]]` entries through serde's internally tagged enum (`do = "..."`), which
//! loses the position of a field inside a step: its error points at the first step of the file.
//! Here each step is read again on its own, and the field the error is about is found in it.

/// Where the `number`th (1-based) `[[steps]]` table of `text` starts: its header's line
/// (1-based), if the file writes steps as `[[steps]]` tables.
pub fn step_line(text: &str, number: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.trim() == "[[steps]]")
        .nth(number.checked_sub(1)?)
        .map(|(index, _)| index + 1)
}

/// The line and column (1-based) of the key `key` in the `number`th step of `text`.
fn key_position(text: &str, number: usize, key: &str) -> Option<(usize, usize)> {
    let header = step_line(text, number)?;
    for (index, line) in text.lines().enumerate().skip(header) {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            break;
        }
        let Some((name, _)) = trimmed.split_once('=') else {
            continue;
        };
        if name.trim().trim_matches('"') == key {
            return Some((index + 1, line.len() - trimmed.len() + 1));
        }
    }
    None
}

/// The name among `candidates` closest to `wrong`, if one is close enough to be what was meant.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(wrong, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// The names between backticks in a serde message (`expected one of `a`, `b``).
fn quoted(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// A step that does not read, said at its field: `None` when every step reads (the error is
/// elsewhere) or the file does not write its steps as `[[steps]]` tables.
pub fn step_error<T: serde::de::DeserializeOwned>(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let steps = table.get("steps")?.as_array()?;
    for (index, step) in steps.iter().enumerate() {
        let number = index + 1;
        let Err(error) = step.clone().try_into::<T>() else {
            continue;
        };
        let message = error.message().trim().to_owned();
        let fields = step.as_table()?;
        let step_name = fields.get("do").and_then(|v| v.as_str()).unwrap_or("?");
        let at = |key: &str| match key_position(text, number, key) {
            Some((line, column)) => format!(
                "line {line}, column {column}: step {number} (do = \"{step_name}\"), field `{key}`"
            ),
            None => format!("step {number} (do = \"{step_name}\"), field `{key}`"),
        };
        let names = quoted(&message);
        // unknown field `txt`, expected one of `text`, `tab`, `wait`
        if message.starts_with("unknown field")
            && let Some((wrong, allowed)) = names.split_first()
        {
            let hint = match did_you_mean(wrong, allowed.iter().copied()) {
                Some(meant) => format!("did you mean `{meant}`? "),
                None => String::new(),
            };
            return Some(format!(
                "{}: this step takes no field `{wrong}`; {hint}its fields are {}",
                at(wrong),
                backticked(allowed)
            ));
        }
        // unknown variant `sayy`, expected one of `open-chat`, ...
        if message.starts_with("unknown variant")
            && let Some((wrong, allowed)) = names.split_first()
        {
            let key = fields
                .iter()
                .find(|(_, value)| value.as_str() == Some(wrong))
                .map(|(key, _)| key.as_str())
                .unwrap_or("do");
            let hint = match did_you_mean(wrong, allowed.iter().copied()) {
                Some(meant) => format!("did you mean \"{meant}\"? "),
                None => String::new(),
            };
            let what = if key == "do" { "steps" } else { "values" };
            return Some(format!(
                "{}: \"{wrong}\" is not one of the {what} there are; {hint}they are {}",
                at(key),
                backticked(allowed)
            ));
        }
        // invalid type: string "4s", expected u64
        if let Some(rest) = message.strip_prefix("invalid type: ") {
            let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
            let key = fields
                .iter()
                .find(|(_, value)| unexpected(value) == found)
                .map(|(key, _)| key.as_str());
            if let Some(key) = key {
                return Some(format!(
                    "{}: found {found}, wanted {}",
                    at(key),
                    plain_type(expected)
                ));
            }
        }
        let line = step_line(text, number)
            .map(|line| format!("line {line}: "))
            .unwrap_or_default();
        return Some(format!(
            "{line}step {number} (do = \"{step_name}\"): {message}"
        ));
    }
    None
}

/// How serde names a value it did not expect (`string "4s"`, `integer `5``).
fn unexpected(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer `{i}`"),
        toml::Value::Float(f) => format!("floating point `{f}`"),
        toml::Value::Boolean(b) => format!("boolean `{b}`"),
        toml::Value::Array(_) => "sequence".into(),
        toml::Value::Table(_) => "map".into(),
        toml::Value::Datetime(_) => "datetime".into(),
    }
}

/// serde's name of a type, as a scenario author would say it.
fn plain_type(expected: &str) -> String {
    match expected {
        "u64" | "u32" | "u16" | "usize" | "i64" | "i32" => {
            "a whole number (milliseconds are written as a number: 4000)".into()
        }
        "a boolean" => "true or false".into(),
        "a string" => "a string in quotes".into(),
        other => other.to_owned(),
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
