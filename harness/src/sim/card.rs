//! The chat card's decision module, `reference-server/static/card-decisions.js`, running in
//! an embedded JavaScript engine (QuickJS through rquickjs): the code that decides "re-send
//! exactly once" in the simulator is the code browsers run.

use anyhow::{Context as _, anyhow};
use rquickjs::{Context, Function, Persistent, Runtime};
use serde_json::Value;

/// Glue: each card's state stays in the engine, keyed by a number; events go in and commands
/// come out as JSON, so the Rust side never holds a JavaScript value.
const GLUE: &str = r#"
globalThis.__alumiaCards = new Map();
globalThis.__alumiaInitial = function (key, options) {
  __alumiaCards.set(key, AlumiaCardDecisions.initial(JSON.parse(options)));
};
globalThis.__alumiaDecide = function (key, event) {
  var outcome = AlumiaCardDecisions.decide(__alumiaCards.get(key), JSON.parse(event));
  __alumiaCards.set(key, outcome.state);
  return JSON.stringify(outcome.commands);
};
globalThis.__alumiaPhase = function (key) {
  var state = __alumiaCards.get(key);
  return state && typeof state.phase === "string" ? state.phase : "";
};
globalThis.__alumiaForget = function () { __alumiaCards.clear(); };
"#;

/// One engine with the module loaded; reused across flows (the module keeps no state of its
/// own: the state goes in and out with every event).
pub struct CardModule {
    // Dropped in this order: the saved functions before the context, the context before the
    // runtime (QuickJS asserts that nothing outlives its runtime).
    /// The glue's functions, looked up once.
    functions: Functions,
    context: Context,
    _runtime: Runtime,
}

struct Functions {
    initial: Persistent<Function<'static>>,
    decide: Persistent<Function<'static>>,
    phase: Persistent<Function<'static>>,
    forget: Persistent<Function<'static>>,
}

impl CardModule {
    /// Loads `source` (the module's text: the served file, or a deliberately broken copy).
    pub fn load(source: &str) -> anyhow::Result<Self> {
        let runtime = Runtime::new().context("start QuickJS")?;
        let context = Context::full(&runtime).context("a QuickJS context")?;
        let functions = context.with(|ctx| -> anyhow::Result<Functions> {
            ctx.eval::<(), _>(source)
                .map_err(|e| anyhow!("card-decisions.js does not load: {e}"))?;
            ctx.eval::<(), _>(GLUE)
                .map_err(|e| anyhow!("the simulator's glue does not load: {e}"))?;
            let get = |name: &str| -> anyhow::Result<Persistent<Function<'static>>> {
                let function: Function = ctx.globals().get(name).map_err(|e| anyhow!("{e}"))?;
                Ok(Persistent::save(&ctx, function))
            };
            Ok(Functions {
                initial: get("__alumiaInitial")?,
                decide: get("__alumiaDecide")?,
                phase: get("__alumiaPhase")?,
                forget: get("__alumiaForget")?,
            })
        })?;
        Ok(Self {
            functions,
            context,
            _runtime: runtime,
        })
    }

    /// The module as the reference server serves it.
    pub fn reference() -> anyhow::Result<Self> {
        Self::load(reference_server::CARD_DECISIONS_JS)
    }

    fn call<A, R>(
        &self,
        name: &str,
        function: &Persistent<Function<'static>>,
        args: A,
    ) -> anyhow::Result<R>
    where
        A: for<'js> rquickjs::function::IntoArgs<'js>,
        R: for<'js> rquickjs::FromJs<'js>,
    {
        self.context.with(|ctx| {
            let function = function.clone().restore(&ctx).map_err(|e| anyhow!("{e}"))?;
            function
                .call::<A, R>(args)
                .map_err(|e| anyhow!("{name} threw: {e}"))
        })
    }

    /// A new card `key` with `initial(options)`.
    pub fn initial(&self, key: u32, options: &Value) -> anyhow::Result<()> {
        self.call(
            "initial",
            &self.functions.initial,
            (key, options.to_string()),
        )
    }

    /// `decide(state of key, event)`: the card's state moves on; the commands come out.
    pub fn decide(&self, key: u32, event: &Value) -> anyhow::Result<Vec<Value>> {
        let commands: String = self
            .call("decide", &self.functions.decide, (key, event.to_string()))
            .map_err(|e| anyhow!("{e:#} (event {event})"))?;
        match serde_json::from_str(&commands)? {
            Value::Array(commands) => Ok(commands),
            other => Err(anyhow!("decide() returned commands {other}")),
        }
    }

    /// The card's `phase` (`idle`, `waiting`, `failed`, `resending`, `done`).
    pub fn phase(&self, key: u32) -> anyhow::Result<String> {
        self.call("phase", &self.functions.phase, (key,))
    }

    /// Forgets every card (a new flow starts).
    pub fn forget(&self) -> anyhow::Result<()> {
        self.call("forget", &self.functions.forget, ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_served_module_decides_in_quickjs() {
        let module = CardModule::reference().unwrap();
        module
            .initial(
                1,
                &json!({"connectionId": "c1", "startUrl": "/x", "origin": "http://p"}),
            )
            .unwrap();
        let clicked = module
            .decide(1, &json!({"type": "user", "action": "connect"}))
            .unwrap();
        assert_eq!(clicked[0]["type"], "open");
        assert_eq!(module.phase(1).unwrap(), "waiting");
        let foreign = module
            .decide(
                1,
                &json!({"type": "channel", "channel": "opener", "origin": "http://evil",
                        "data": {"result": "success", "connectionId": "c1"}}),
            )
            .unwrap();
        assert_eq!(foreign[0]["reason"], "foreign origin");
        let connected = module
            .decide(1, &json!({"type": "poll-answer", "status": "connected"}))
            .unwrap();
        assert!(connected.iter().any(|c| c["type"] == "resend"));
        assert_eq!(module.phase(1).unwrap(), "resending");
    }
}
