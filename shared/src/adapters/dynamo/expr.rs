//! A small builder for `UpdateItem` expressions: every name and value it holds is used,
//! which real DynamoDB insists on (moto does not check it).

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

#[derive(Default)]
pub struct UpdateExpr {
    sets: Vec<String>,
    adds: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl UpdateExpr {
    pub fn new() -> Self {
        Self::default()
    }

    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// `SET attribute = value`.
    pub fn set(mut self, attribute: &str, value: AttributeValue) -> Self {
        let name = self.name(attribute);
        let placeholder = format!(":{attribute}");
        self.sets.push(format!("{name} = {placeholder}"));
        self.values.insert(placeholder, value);
        self
    }

    /// `SET` when `Some`, `REMOVE` when `None`.
    pub fn set_or_remove(self, attribute: &str, value: Option<AttributeValue>) -> Self {
        match value {
            Some(v) => self.set(attribute, v),
            None => self.remove(attribute),
        }
    }

    /// `SET attribute = if_not_exists(attribute, value)`: writes it only on creation.
    pub fn set_if_absent(mut self, attribute: &str, value: AttributeValue) -> Self {
        let name = self.name(attribute);
        let placeholder = format!(":{attribute}");
        self.sets
            .push(format!("{name} = if_not_exists({name}, {placeholder})"));
        self.values.insert(placeholder, value);
        self
    }

    /// `SET attribute = list_append(if_not_exists(attribute, []), list)`.
    pub fn append(mut self, attribute: &str, list: AttributeValue) -> Self {
        let name = self.name(attribute);
        let placeholder = format!(":{attribute}");
        self.sets.push(format!(
            "{name} = list_append(if_not_exists({name}, :empty_list), {placeholder})"
        ));
        self.values.insert(placeholder, list);
        self.values
            .insert(":empty_list".to_owned(), AttributeValue::L(Vec::new()));
        self
    }

    /// `ADD attribute value` (a number; created at `value` if absent).
    pub fn add(mut self, attribute: &str, value: AttributeValue) -> Self {
        let name = self.name(attribute);
        let placeholder = format!(":{attribute}");
        self.adds.push(format!("{name} {placeholder}"));
        self.values.insert(placeholder, value);
        self
    }

    pub fn remove(mut self, attribute: &str) -> Self {
        let name = self.name(attribute);
        self.removes.push(name);
        self
    }

    /// A value used only by the condition expression.
    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// A name used only by the condition expression (`#placeholder` → `attribute`).
    pub fn condition_name(mut self, attribute: &str) -> Self {
        self.name(attribute);
        self
    }

    pub fn expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.adds.is_empty() {
            parts.push(format!("ADD {}", self.adds.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        parts.join(" ")
    }

    /// Apply to an `UpdateItem` call.
    pub fn update_item(self, request: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        request
            .update_expression(self.expression())
            .set_expression_attribute_names(Some(self.names).filter(|m| !m.is_empty()))
            .set_expression_attribute_values(Some(self.values).filter(|m| !m.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_set_and_remove_with_only_used_placeholders() {
        let e = UpdateExpr::new()
            .set("status", AttributeValue::S("paused".into()))
            .set_or_remove("next_attempt_at", None)
            .remove("lease_id")
            .value(":lease", AttributeValue::S("l".into()));
        assert_eq!(
            e.expression(),
            "SET #status = :status REMOVE #next_attempt_at, #lease_id"
        );
        assert_eq!(e.names.len(), 3);
        assert_eq!(e.names["#status"], "status");
        assert_eq!(e.values.len(), 2);
        assert!(e.values.contains_key(":status") && e.values.contains_key(":lease"));
    }

    #[test]
    fn appends_and_first_writes() {
        let e = UpdateExpr::new()
            .append("at", AttributeValue::L(vec![]))
            .set_if_absent("id", AttributeValue::S("x".into()));
        assert_eq!(
            e.expression(),
            "SET #at = list_append(if_not_exists(#at, :empty_list), :at), #id = if_not_exists(#id, :id)"
        );
        assert_eq!(e.values.len(), 3);
    }
}
