//! A socket client: what the command line uses to talk to the daemon.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::protocol::RpcError;

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
    #[error("{}", .0.message)]
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
        let first = self.next_id;
        let requests: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (method, params))| json!({ "jsonrpc": "2.0", "id": first + i as u64, "method": method, "params": params }))
            .collect();
        self.next_id += calls.len() as u64;
        let mut line = Value::Array(requests).to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        loop {
            let message = self.next_message().await?.ok_or(ClientError::Closed)?;
            let Value::Array(answers) = message else {
                if let Some(error) = message.get("error") {
                    return Err(rpc_error(error));
                }
                continue;
            };
            let mut out: Vec<Option<Result<Value, RpcError>>> = vec![None; calls.len()];
            for a in answers {
                let Some(i) = a["id"].as_u64().and_then(|id| id.checked_sub(first)) else {
                    continue;
                };
                let slot = out
                    .get_mut(i as usize)
                    .ok_or_else(|| ClientError::Protocol(a.to_string()))?;
                *slot = Some(match a.get("error") {
                    Some(e) => Err(serde_json::from_value(e.clone())
                        .map_err(|_| ClientError::Protocol(e.to_string()))?),
                    None => Ok(a["result"].clone()),
                });
            }
            return out
                .into_iter()
                .map(|o| o.ok_or_else(|| ClientError::Protocol("a batch answer is missing".into())))
                .collect();
        }
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

fn rpc_error(error: &Value) -> ClientError {
    match serde_json::from_value::<RpcError>(error.clone()) {
        Ok(e) => ClientError::Rpc(e),
        Err(_) => ClientError::Protocol(error.to_string()),
    }
}
