//! A Rust client for the Stagecoach daemon: typed calls over its Unix
//! socket (JSON-RPC 2.0, one JSON value per line), batches, and
//! notifications as a stream. The `stagecoach` command line is built on it.
//!
//! Methods are the marker types of [`stagecoach_types::api::methods`]; their
//! parameters are [`stagecoach_types::api::params`], checked by the compiler.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use stagecoach_client::Client;
//! use stagecoach_types::api::{methods, params};
//! use stagecoach_types::model::Millis;
//! use stagecoach_types::protocol::Event;
//!
//! # async fn demo() -> Result<(), stagecoach_client::ClientError> {
//! let socket = std::path::Path::new("/home/me/.local/share/stagecoach/stagecoach.sock");
//! let mut client = Client::connect(socket).await?;
//! let created = client
//!     .request::<methods::ProspectCreate>(&params::NewProspect {
//!         name: "Ada".into(),
//!         owner: Some("maria".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("created prospect {} in {}", created.prospect.id, created.prospect.stage);
//! let reload = client
//!     .request::<methods::ProcessReload>(&params::ProcessReload::default())
//!     .await?;
//! println!("version {} in force", reload.version);
//!
//! // Every move, as it happens (on its own connection).
//! let mut events = Client::connect(socket).await?.subscribe().await?;
//! while let Some(event) = events.next().await {
//!     if let Event::ProspectMoved { prospect, transition } = event? {
//!         println!("{} moved to {}", prospect.name, transition.to);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use futures_util::Stream;
use stagecoach_types::api::Method;
use stagecoach_types::protocol::{Event, RpcError};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers on the socket.
    #[error(
        "cannot connect to the daemon at `{path}`: {error}\nhint: start it with `stagecoach serve`, or pass `--socket` / set `STAGECOACH_SOCKET`"
    )]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why (in the message, not a source: printed once).
        error: std::io::Error,
    },
    /// The connection broke.
    #[error("connection to the daemon failed: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon closed the connection.
    #[error("the daemon closed the connection")]
    Closed,
    /// The daemon answered with an error.
    #[error("{}{}", .0.message, .0.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default())]
    Rpc(RpcError),
    /// The daemon sent something that is not JSON-RPC.
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
}

/// The daemon's notifications on a subscribed connection, in order; ends
/// when the daemon closes the connection.
/// A notification this client does not know (from a newer daemon) comes as
/// [`ClientError::Protocol`] and the stream goes on.
pub type Events = std::pin::Pin<Box<dyn Stream<Item = Result<Event, ClientError>> + Send>>;

/// One connection to the daemon.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    line: String,
    /// Batch answers that arrived before the batch asked for.
    stash: Vec<Vec<Value>>,
}

/// A batch sent and not yet answered: its first id and length.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    first: u64,
    len: usize,
}

impl Client {
    /// Connects to the daemon's socket.
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|error| ClientError::Connect {
                path: path.to_path_buf(),
                error,
            })?;
        let (r, w) = stream.into_split();
        Ok(Client {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            line: String::new(),
            stash: Vec::new(),
        })
    }

    /// Calls method `M` with typed parameters and reads its typed result.
    pub async fn request<M: Method>(
        &mut self,
        params: &M::Params,
    ) -> Result<M::Result, ClientError> {
        let params = serde_json::to_value(params)
            .map_err(|e| ClientError::Protocol(format!("parameters of `{}`: {e}", M::NAME)))?;
        let result = self.call(M::NAME, params).await?;
        serde_json::from_value(result)
            .map_err(|e| ClientError::Protocol(format!("result of `{}`: {e}", M::NAME)))
    }

    /// Subscribes this connection to the daemon's notifications and turns
    /// it into their stream (use another connection for calls).
    pub async fn subscribe(mut self) -> Result<Events, ClientError> {
        self.call("events.subscribe", json!({})).await?;
        Ok(Box::pin(futures_util::stream::unfold(
            self,
            |mut client| async move {
                loop {
                    match client.next_message().await {
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e), client)),
                        Ok(Some(message)) => {
                            if message.get("method").is_some() {
                                let event = serde_json::from_value::<Event>(message).map_err(|e| {
                                    ClientError::Protocol(format!("notification: {e}"))
                                });
                                return Some((event, client));
                            }
                        }
                    }
                }
            },
        )))
    }

    /// Calls `method` with untyped parameters and waits for its answer,
    /// skipping notifications.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        loop {
            let message = self.next_message().await?.ok_or(ClientError::Closed)?;
            if message.get("id") != Some(&json!(id)) {
                if message.get("method").is_some() {
                    continue;
                }
                if let Some(error) = message.get("error") {
                    // An error without our id: a framing-level refusal.
                    return Err(rpc_error(error));
                }
                continue;
            }
            if let Some(error) = message.get("error") {
                return Err(rpc_error(error));
            }
            return message
                .get("result")
                .cloned()
                .ok_or_else(|| ClientError::Protocol(message.to_string()));
        }
    }

    /// Sends `calls` as one JSON-RPC batch and returns their answers in order.
    pub async fn batch(
        &mut self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, RpcError>>, ClientError> {
        let calls: Vec<(&str, String)> = calls.iter().map(|(m, p)| (*m, p.to_string())).collect();
        let (sent, _) = self.pipeline(&calls, None).await?;
        let (_, answers) = self.pipeline(&[], sent).await?;
        Ok(answers)
    }

    /// Sends `calls` (methods with their params already as JSON text) as
    /// one batch while receiving the answers to `previous`, an earlier
    /// batch, so that building, sending and the daemon's work overlap.
    /// Returns the new batch (to pass as `previous` next time; none when
    /// `calls` is empty) and `previous`'s answers in order.
    pub async fn pipeline(
        &mut self,
        calls: &[(&str, String)],
        previous: Option<Sent>,
    ) -> Result<(Option<Sent>, Vec<Result<Value, RpcError>>), ClientError> {
        let sent = (!calls.is_empty()).then_some(Sent {
            first: self.next_id,
            len: calls.len(),
        });
        let mut line = String::new();
        if let Some(sent) = &sent {
            line.push('[');
            for (i, (method, params)) in calls.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let method = Value::String(method.to_string());
                line.push_str(&format!(
                    "{{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":{method},\"params\":{params}}}",
                    sent.first + i as u64
                ));
            }
            line.push_str("]\n");
            self.next_id += calls.len() as u64;
        }
        let write = async {
            if !line.is_empty() {
                self.writer.write_all(line.as_bytes()).await?;
            }
            Ok::<(), ClientError>(())
        };
        let read = async {
            match previous {
                Some(p) => receive(&mut self.reader, &mut self.line, &mut self.stash, p).await,
                None => Ok(Vec::new()),
            }
        };
        let ((), answers) = tokio::try_join!(write, read)?;
        Ok((sent, answers))
    }

    /// The next line from the daemon (an answer or a notification); `None`
    /// when the daemon closed the connection.
    pub async fn next_message(&mut self) -> Result<Option<Value>, ClientError> {
        self.line.clear();
        if self.reader.read_line(&mut self.line).await? == 0 {
            return Ok(None);
        }
        serde_json::from_str(&self.line)
            .map(Some)
            .map_err(|e| ClientError::Protocol(format!("{e}: {}", self.line.trim())))
    }
}

/// Reads until the answers to batch `sent` are in; answers to other
/// batches are kept in `stash`, notifications skipped.
async fn receive(
    reader: &mut BufReader<OwnedReadHalf>,
    line: &mut String,
    stash: &mut Vec<Vec<Value>>,
    sent: Sent,
) -> Result<Vec<Result<Value, RpcError>>, ClientError> {
    let ours = |answers: &[Value]| {
        answers
            .first()
            .and_then(|a| a["id"].as_u64())
            .is_some_and(|id| id >= sent.first && id < sent.first + sent.len as u64)
    };
    let answers = loop {
        if let Some(i) = stash.iter().position(|a| ours(a)) {
            break stash.swap_remove(i);
        }
        line.clear();
        if reader.read_line(line).await? == 0 {
            return Err(ClientError::Closed);
        }
        let message: Value = serde_json::from_str(line)
            .map_err(|e| ClientError::Protocol(format!("{e}: {}", line.trim())))?;
        match message {
            Value::Array(answers) if ours(&answers) => break answers,
            Value::Array(answers) => stash.push(answers),
            other => {
                if let Some(error) = other.get("error") {
                    return Err(rpc_error(error));
                }
            }
        }
    };
    let mut out: Vec<Option<Result<Value, RpcError>>> = vec![None; sent.len];
    for mut a in answers {
        let Some(i) = a["id"].as_u64().and_then(|id| id.checked_sub(sent.first)) else {
            continue;
        };
        let slot = out
            .get_mut(i as usize)
            .ok_or_else(|| ClientError::Protocol(a.to_string()))?;
        *slot = Some(match a.get("error") {
            Some(e) => Err(serde_json::from_value(e.clone())
                .map_err(|_| ClientError::Protocol(e.to_string()))?),
            None => Ok(a["result"].take()),
        });
    }
    out.into_iter()
        .map(|o| o.ok_or_else(|| ClientError::Protocol("a batch answer is missing".into())))
        .collect()
}

fn rpc_error(error: &Value) -> ClientError {
    match serde_json::from_value::<RpcError>(error.clone()) {
        Ok(e) => ClientError::Rpc(e),
        Err(_) => ClientError::Protocol(error.to_string()),
    }
}
