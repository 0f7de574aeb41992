//! GSEAsyncServer's `--config-file-path` YAML: the MySQL database and table the default
//! action stores messages in.
//!
//! ```yaml
//! task:
//!   addrs: "127.0.0.1"
//!   port: "3306"
//!   username: "intake"
//!   password: "secret"
//!   database: "intake"
//!   table: "messages"
//!   connMaxLifetime: 10     # hours (accepted, unused: sqlx recycles idle connections)
//!   maxIdleConns: 100       # accepted, unused
//!   maxOpenConns: 100       # pool size
//! ```

use std::path::Path;

use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GseConfig {
    /// The `task:` section.
    pub task: Option<MysqlConfig>,
}

/// The `task:` section: where the default action stores messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MysqlConfig {
    /// Host name or address.
    #[serde(default, deserialize_with = "text")]
    pub addrs: String,
    /// Port (a string in GSEAsyncServer's file; a number is accepted too).
    #[serde(default, deserialize_with = "text")]
    pub port: String,
    /// User.
    #[serde(default, deserialize_with = "text")]
    pub username: String,
    /// Password.
    #[serde(default, deserialize_with = "text")]
    pub password: String,
    /// Database.
    #[serde(default, deserialize_with = "text")]
    pub database: String,
    /// Table the messages go to.
    #[serde(default, deserialize_with = "text")]
    pub table: String,
    /// Hours a connection may live (accepted for compatibility).
    #[serde(default)]
    pub conn_max_lifetime: Option<u64>,
    /// Idle connections kept (accepted for compatibility).
    #[serde(default)]
    pub max_idle_conns: Option<u32>,
    /// Pool size.
    #[serde(default)]
    pub max_open_conns: Option<u32>,
}

/// Why the configuration could not be used; the texts are GSEAsyncServer's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("Failed to read configuration file: {path},error: {source}")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML of this shape.
    #[error("Failed to parse configuration,error: {0}")]
    Parse(#[from] serde_yaml::Error),
    /// A required value is missing.
    #[error("Invalid configuration,error: {0}")]
    Invalid(String),
}

impl GseConfig {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_yaml::from_str(text)?;
        let Some(task) = &config.task else {
            return Err(ConfigError::Invalid("task section is required".into()));
        };
        task.validate()?;
        Ok(config)
    }
}

impl MysqlConfig {
    /// Checks that every connection value is present, as GSEAsyncServer does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let required = [
            ("addrs", &self.addrs),
            ("port", &self.port),
            ("username", &self.username),
            ("password", &self.password),
            ("database", &self.database),
            ("table", &self.table),
        ];
        for (name, value) in required {
            if value.is_empty() {
                return Err(ConfigError::Invalid(format!("mysql {name} is required")));
            }
        }
        Ok(())
    }

    /// The `mysql://` URL for sqlx.
    pub fn url(&self) -> String {
        format!(
            "mysql://{}:{}@{}:{}/{}",
            encode(&self.username),
            encode(&self.password),
            self.addrs,
            self.port,
            encode(&self.database)
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A YAML scalar (string or number) as text.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(match Option::<Scalar>::deserialize(d)? {
        None => String::new(),
        Some(Scalar::Text(s)) => s,
        Some(Scalar::Int(n)) => n.to_string(),
        Some(Scalar::Float(n)) => n.to_string(),
        Some(Scalar::Bool(b)) => b.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GSE: &str = "# Configurate task...\ntask:\n  addrs: \"db.local\"\n  port: 3306\n  username: \"u@x\"\n  password: \"p:/w\"\n  database: \"intake\"\n  table: \"messages\"\n  connMaxLifetime: 10\n  maxIdleConns: 100\n  maxOpenConns: 100\n";

    #[test]
    fn reads_gse_config() {
        let config = GseConfig::parse(GSE).unwrap();
        let task = config.task.unwrap();
        assert_eq!(task.port, "3306");
        assert_eq!(task.table, "messages");
        assert_eq!(task.max_open_conns, Some(100));
        assert_eq!(task.url(), "mysql://u%40x:p%3A%2Fw@db.local:3306/intake");
    }

    #[test]
    fn empty_values_are_refused_like_gse() {
        let err = GseConfig::parse("task:\n  addrs: \"\"\n  port: \"\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid configuration,error: mysql addrs is required"
        );
        assert!(matches!(
            GseConfig::parse("task: [").unwrap_err(),
            ConfigError::Parse(_)
        ));
        let missing = GseConfig::load(Path::new("/nonexistent/gale.yml")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("Failed to read configuration file: /nonexistent/gale.yml,error: ")
        );
    }
}
