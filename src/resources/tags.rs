//! The stack's tags in each SDK's own types, both ways: built for a create call, and read back
//! as (key, value) pairs for the ownership check (one helper, whatever the service).

use std::collections::HashMap;

use crate::model::SdkTag;

impl SdkTag for aws_sdk_ec2::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build()
    }
}

impl SdkTag for aws_sdk_ecs::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build()
    }
}

impl SdkTag for aws_sdk_elasticloadbalancingv2::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build()
    }
}

impl SdkTag for aws_sdk_cloudwatch::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build()
    }
}

impl SdkTag for aws_sdk_dynamodb::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build().expect("key and value are set")
    }
}

impl SdkTag for aws_sdk_acm::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build().expect("key is set")
    }
}

impl SdkTag for aws_sdk_s3::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build().expect("key and value are set")
    }
}

impl SdkTag for aws_sdk_iam::types::Tag {
    fn tag(key: String, value: String) -> Self {
        Self::builder().key(key).value(value).build().expect("key and value are set")
    }
}

/// Tags as AWS answered them, read as (key, value) pairs.
pub trait TagPairs {
    fn pairs(&self) -> Vec<(&str, &str)>;
}

macro_rules! optional_pairs {
    ($($t:ty),*) => {$(
        impl TagPairs for [$t] {
            fn pairs(&self) -> Vec<(&str, &str)> {
                self.iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())).collect()
            }
        }
    )*};
}

optional_pairs!(
    aws_sdk_ec2::types::Tag,
    aws_sdk_ecs::types::Tag,
    aws_sdk_elasticloadbalancingv2::types::Tag,
    aws_sdk_cloudwatch::types::Tag
);

impl TagPairs for [aws_sdk_dynamodb::types::Tag] {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().map(|t| (t.key(), t.value())).collect()
    }
}

impl TagPairs for [aws_sdk_iam::types::Tag] {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().map(|t| (t.key(), t.value())).collect()
    }
}

impl TagPairs for [aws_sdk_s3::types::Tag] {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().map(|t| (t.key(), t.value())).collect()
    }
}

impl TagPairs for [aws_sdk_acm::types::Tag] {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().map(|t| (t.key(), t.value().unwrap_or_default())).collect()
    }
}

impl TagPairs for HashMap<String, String> {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

impl TagPairs for [(String, String)] {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}
