//! The chat card's decision module, `reference-server/static/card-decisions.js`, running in
//! an embedded JavaScript engine (QuickJS through rquickjs): the code that decides "re-send
//! exactly once" in the simulator is the code browsers run.

use anyhow::{Context as _, anyhow};
use rquickjs::{Context, Function, Runtime};
use serde_json::Value;

/// Glue: JSON in and out, so the Rust side never holds a JavaScript value.
const GLUE: &str = r#"
globalThis.__alumiaInitial = function (options) {
  return JSON.stringify(AlumiaCardDecisions.initial(JSON.parse(options)));
};
globalThis.__alumiaDecide = function (state, event) {
  return JSON.stringify(AlumiaCardDecisions.decide(JSON.parse(state), JSON.parse(event)));
};
"#;

/// One engine with the module loaded; reused across flows (the module keeps no state of its
/// own: the state goes in and out with every event).
pub struct CardModule {
    _runtime: Runtime,
    context: Context,
}

/// What `decide` returned.
#[derive(Debug, Clone)]
pub struct Decision {
    pub state: String,
    pub commands: Vec<Value>,
}

impl CardModule {
    /// Loads `source` (the module's text: the served file, or a deliberately broken copy).
    pub fn load(source: &str) -> anyhow::Result<Self> {
        let runtime = Runtime::new().context("start QuickJS")?;
        let context = Context::full(&runtime).context("a QuickJS context")?;
        context.with(|ctx| -> anyhow::Result<()> {
            ctx.eval::<(), _>(source)
                .map_err(|e| anyhow!("card-decisions.js does not load: {e}"))?;
            ctx.eval::<(), _>(GLUE)
                .map_err(|e| anyhow!("the simulator's glue does not load: {e}"))?;
            Ok(())
        })?;
        Ok(Self {
            _runtime: runtime,
            context,
        })
    }

    /// The module as the reference server serves it.
    pub fn reference() -> anyhow::Result<Self> {
        Self::load(reference_server::CARD_DECISIONS_JS)
    }

    pub fn initial(&self, options: &Value) -> anyhow::Result<String> {
        self.context.with(|ctx| {
            let initial: Function = ctx
                .globals()
                .get("__alumiaInitial")
                .map_err(|e| anyhow!("{e}"))?;
            initial
                .call::<_, String>((options.to_string(),))
                .map_err(|e| anyhow!("initial() threw: {e}"))
        })
    }

    pub fn decide(&self, state: &str, event: &Value) -> anyhow::Result<Decision> {
        let answer = self.context.with(|ctx| {
            let decide: Function = ctx
                .globals()
                .get("__alumiaDecide")
                .map_err(|e| anyhow!("{e}"))?;
            decide
                .call::<_, String>((state.to_owned(), event.to_string()))
                .map_err(|e| anyhow!("decide() threw on {event}: {e}"))
        })?;
        let mut value: Value = serde_json::from_str(&answer)?;
        let commands = match value["commands"].take() {
            Value::Array(commands) => commands,
            _ => Vec::new(),
        };
        Ok(Decision {
            state: value["state"].to_string(),
            commands,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_served_module_decides_in_quickjs() {
        let module = CardModule::reference().unwrap();
        let state = module
            .initial(&json!({"connectionId": "c1", "startUrl": "/x", "origin": "http://p"}))
            .unwrap();
        let clicked = module
            .decide(&state, &json!({"type": "user", "action": "connect"}))
            .unwrap();
        assert_eq!(clicked.commands[0]["type"], "open");
        let foreign = module
            .decide(
                &clicked.state,
                &json!({"type": "channel", "channel": "opener", "origin": "http://evil",
                        "data": {"result": "success", "connectionId": "c1"}}),
            )
            .unwrap();
        assert_eq!(foreign.commands[0]["reason"], "foreign origin");
        let connected = module
            .decide(
                &clicked.state,
                &json!({"type": "poll-answer", "status": "connected"}),
            )
            .unwrap();
        assert!(connected.commands.iter().any(|c| c["type"] == "resend"));
    }
}
