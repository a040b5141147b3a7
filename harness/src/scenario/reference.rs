//! `docs/scenario-reference.md`: every key of a scenario file, every step with its fields, and
//! every value a field takes, written from the scenario's JSON schema ([`super::json_schema`],
//! itself from the types' doc comments), so the reference cannot drift from what parses. A test
//! compares the committed file with [`markdown`]; `harness schema --markdown` regenerates it.

use serde_json::Value;
use std::fmt::Write as _;

/// The reference, as Markdown.
pub fn markdown() -> String {
    let schema: Value = serde_json::from_str(&super::json_schema()).expect("the schema is JSON");
    let defs = &schema["$defs"];
    let mut out = String::new();
    out.push_str(
        "# Scenario file reference\n\n\
         Generated from the scenario types (`cargo run -p harness -- schema --markdown > docs/scenario-reference.md`; \
         a test fails when this file and the types differ). `scenarios/scenario.schema.json` is the same as JSON Schema, \
         for editors. A complete example: `scenarios/channels/baseline.toml`.\n\n",
    );
    out.push_str("## Top level\n\n");
    fields_table(&mut out, &schema);
    let mut tables = vec![
        ("[platform]", "PlatformConfig"),
        ("[browser]", "BrowserConfig"),
        ("[provider]", "Faults"),
        ("[provider.mcp]", "McpFaults"),
        ("[expect]", "Expectation"),
        ("[expect.engines.ENGINE]", "EngineExpectation"),
    ];
    tables.retain(|(_, name)| defs.get(*name).is_some());
    let named: Vec<&str> = tables.iter().map(|(_, name)| *name).collect();
    for (heading, name) in &tables {
        let def = &defs[*name];
        let _ = writeln!(
            out,
            "<a id=\"{}\"></a>\n\n## `{heading}`\n",
            name.to_lowercase()
        );
        description(&mut out, def);
        fields_table(&mut out, def);
    }
    out.push_str(
        "<a id=\"step\"></a>\n\n## Steps (`[[steps]]`, in order; `do` names the step)\n\n",
    );
    for step in defs["Step"]["oneOf"].as_array().into_iter().flatten() {
        let name = step["properties"]["do"]["const"].as_str().unwrap_or("?");
        let _ = writeln!(out, "### `do = \"{name}\"`\n");
        description(&mut out, step);
        let mut fields = step.clone();
        if let Some(properties) = fields["properties"].as_object_mut() {
            properties.remove("do");
            if properties.is_empty() {
                out.push_str("No other field.\n\n");
                continue;
            }
        }
        fields_table(&mut out, &fields);
    }
    out.push_str("## Other tables\n\n");
    for (name, def) in defs.as_object().into_iter().flatten() {
        if named.contains(&name.as_str()) || name == "Step" || def["properties"].is_null() {
            continue;
        }
        let _ = writeln!(out, "### {name}\n");
        description(&mut out, def);
        fields_table(&mut out, def);
    }
    // Tables of one of several shapes, told apart by a tag field (`kind = "..."`).
    for (name, def) in defs.as_object().into_iter().flatten() {
        let Some(variants) = def["oneOf"].as_array() else {
            continue;
        };
        if name == "Step" || !variants.iter().all(|v| v["type"] == "object") {
            continue;
        }
        let _ = writeln!(out, "### {name}\n");
        description(&mut out, def);
        for variant in variants {
            let properties = variant["properties"].as_object();
            let tag = properties
                .into_iter()
                .flatten()
                .find_map(|(key, value)| value["const"].as_str().map(|c| (key, c)));
            let others: Vec<String> = properties
                .into_iter()
                .flatten()
                .filter(|(_, value)| value["const"].is_null())
                .map(|(key, value)| format!("`{key}` ({})", type_of(value)))
                .collect();
            let (key, value) = tag.unwrap_or((name, "?"));
            let _ = write!(out, "- `{key} = \"{value}\"`");
            if let Some(what) = variant["description"].as_str() {
                let _ = write!(out, ": {}", one_line(what));
            }
            if !others.is_empty() {
                let _ = write!(out, " Fields: {}.", others.join(", "));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str("## Values\n\nWhat each field of one of these types takes.\n\n");
    for (name, def) in defs.as_object().into_iter().flatten() {
        let values = values_of(def);
        if values.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {name}\n");
        description(&mut out, def);
        for (value, what) in values {
            match what {
                Some(what) => {
                    let _ = writeln!(out, "- `\"{value}\"`: {}", one_line(&what));
                }
                None => {
                    let _ = writeln!(out, "- `\"{value}\"`");
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The string values a type takes, each with its description.
fn values_of(def: &Value) -> Vec<(String, Option<String>)> {
    let mut values = Vec::new();
    let mut add = |schema: &Value| {
        let what = schema["description"].as_str().map(str::to_owned);
        if let Some(value) = schema["const"].as_str() {
            values.push((value.to_owned(), what));
        } else if let Some(all) = schema["enum"].as_array() {
            for value in all.iter().filter_map(Value::as_str) {
                values.push((value.to_owned(), what.clone()));
            }
        }
    };
    if let Some(variants) = def["oneOf"].as_array() {
        variants.iter().for_each(&mut add);
    } else if def["type"] == "string" {
        add(def);
    }
    values
}

fn description(out: &mut String, schema: &Value) {
    if let Some(text) = schema["description"].as_str() {
        let _ = writeln!(out, "{}\n", one_line(text));
    }
}

fn fields_table(out: &mut String, schema: &Value) {
    let Some(properties) = schema["properties"].as_object() else {
        out.push('\n');
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    out.push_str("| field | takes | default | what it is |\n|---|---|---|---|\n");
    for (name, field) in properties {
        let default = if required.contains(&name.as_str()) {
            "required".to_owned()
        } else {
            match &field["default"] {
                Value::Null => "—".to_owned(),
                Value::Object(_) => "each field's own".to_owned(),
                value => format!("`{}`", compact(value)),
            }
        };
        let what = field["description"]
            .as_str()
            .map(one_line)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{name}` | {} | {default} | {} |",
            type_of(field),
            what.replace('|', "\\|")
        );
    }
    out.push('\n');
}

/// A field's type, as a reader says it: a def's name links to its values.
fn type_of(field: &Value) -> String {
    if let Some(reference) = field["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    if let Some(any) = field["anyOf"].as_array().or(field["oneOf"].as_array()) {
        let kinds: Vec<String> = any
            .iter()
            .filter(|s| s["type"] != "null")
            .map(type_of)
            .collect();
        return kinds.join(" or ");
    }
    let kinds: Vec<&str> = match &field["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| *k != "null")
            .collect(),
        _ => Vec::new(),
    };
    kinds
        .iter()
        .map(|kind| match *kind {
            "array" => format!("list of {}", type_of(&field["items"])),
            "integer" => "whole number".to_owned(),
            "object" if field["additionalProperties"].is_object() => {
                format!("table of {}", type_of(&field["additionalProperties"]))
            }
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
