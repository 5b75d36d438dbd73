//! Where the S3 endpoint was set: the place a message tells the user to fix.

use std::fmt;

/// Where the endpoint came from (for messages: the place to fix it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointSource {
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`.
    Env(&'static str),
    /// `s3.endpoint` in config.yaml.
    Config,
    /// AWS S3 in the region.
    Default,
}

impl fmt::Display for EndpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointSource::Env(v) => write!(f, "${v}"),
            EndpointSource::Config => f.write_str("s3.endpoint in config.yaml"),
            EndpointSource::Default => f.write_str(
                "the AWS default for the region; set s3.endpoint in config.yaml (or \
                 AWS_ENDPOINT_URL_S3) for another S3-compatible server",
            ),
        }
    }
}
