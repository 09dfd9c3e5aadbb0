//! A socket client: what the command line uses to talk to the daemon.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use stagecoach_types::protocol::RpcError;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers on the socket.
    #[error(
        "cannot connect to the daemon at `{path}`: {source}\nhint: start it with `stagecoach serve`, or pass `--socket` / set `STAGECOACH_SOCKET`"
    )]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
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

    /// Calls `method` and waits for its answer, skipping notifications.
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
