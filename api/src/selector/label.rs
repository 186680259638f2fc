//! Label selectors: `key=value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::SelectorError;
use crate::validation::names;

/// How a requirement compares a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// `key=value` or `key==value`: the label is present with that value.
    Equals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
}

/// One condition on one label key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The comparison.
    pub operator: Operator,
    /// The values compared against (one for `=`/`!=`, none for exists checks).
    pub values: BTreeSet<String>,
}

impl Requirement {
    /// True when `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.contains(v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    /// The single value of an `=`/`!=` requirement.
    fn single_value(&self) -> &str {
        self.values.iter().next().map_or("", String::as_str)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        // A set holding only the empty value renders as `(,)`, because `()` is an empty set.
        let set = || match self.values.iter().collect::<Vec<_>>().as_slice() {
            [only] if only.is_empty() => ",".to_string(),
            values => values
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(","),
        };
        match self.operator {
            Operator::Equals => write!(f, "{key}={}", self.single_value()),
            Operator::NotEquals => write!(f, "{key}!={}", self.single_value()),
            Operator::In => write!(f, "{key} in ({})", set()),
            Operator::NotIn => write!(f, "{key} notin ({})", set()),
            Operator::Exists => f.write_str(key),
            Operator::DoesNotExist => write!(f, "!{key}"),
        }
    }
}

/// A conjunction of label requirements; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    /// The requirements, sorted so equal selectors compare and render equal.
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Parses `app=web, tier in (a,b), !canary` (whitespace tolerant).
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let tokens = lex(text);
        let mut parser = Parser {
            text,
            tokens,
            next: 0,
        };
        let mut requirements = Vec::new();
        if parser.peek().1 != Token::End {
            loop {
                requirements.push(parser.requirement()?);
                match parser.take() {
                    (_, Token::Comma) => continue,
                    (_, Token::End) => break,
                    (at, token) => {
                        return Err(parser.error(
                            at,
                            format!("expected ',' or the end of the selector, found {token}"),
                        ));
                    }
                }
            }
        }
        for requirement in &requirements {
            validate(requirement)?;
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// The selector requiring every pair of `labels` (`key=value` for each).
    pub fn from_map(labels: &BTreeMap<String, String>) -> Self {
        LabelSelector::from_requirements(
            labels
                .iter()
                .map(|(key, value)| Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: BTreeSet::from([value.clone()]),
                })
                .collect(),
        )
    }

    /// A selector of these requirements, in canonical order.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort();
        LabelSelector { requirements }
    }

    /// The requirements, in canonical order.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(text)
    }
}

/// Checks the key and values of a parsed requirement.
fn validate(requirement: &Requirement) -> Result<(), SelectorError> {
    let problems = names::qualified_name(&requirement.key);
    if !problems.is_empty() {
        return Err(SelectorError::InvalidKey {
            key: requirement.key.clone(),
            reason: problems.join("; "),
        });
    }
    for value in &requirement.values {
        let problems = names::label_value(value);
        if !problems.is_empty() {
            return Err(SelectorError::InvalidValue {
                key: requirement.key.clone(),
                value: value.clone(),
                reason: problems.join("; "),
            });
        }
    }
    Ok(())
}

/// A lexical unit of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A key or value.
    Word(String),
    /// `=`.
    Equals,
    /// `==`.
    DoubleEquals,
    /// `!=`.
    NotEquals,
    /// `!`.
    Bang,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `,`.
    Comma,
    /// The end of the text.
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(word) => write!(f, "{word:?}"),
            Token::Equals => f.write_str("'='"),
            Token::DoubleEquals => f.write_str("'=='"),
            Token::NotEquals => f.write_str("'!='"),
            Token::Bang => f.write_str("'!'"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::Comma => f.write_str("','"),
            Token::End => f.write_str("the end of the selector"),
        }
    }
}

/// Splits a selector into tokens with their byte offsets; whitespace separates words.
fn lex(text: &str) -> Vec<(usize, Token)> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            '=' => {
                if chars.next_if(|(_, c)| *c == '=').is_some() {
                    Token::DoubleEquals
                } else {
                    Token::Equals
                }
            }
            '!' => {
                if chars.next_if(|(_, c)| *c == '=').is_some() {
                    Token::NotEquals
                } else {
                    Token::Bang
                }
            }
            first => {
                let mut word = String::from(first);
                while let Some((_, c)) = chars.next_if(|(_, c)| !is_special(*c)) {
                    word.push(c);
                }
                Token::Word(word)
            }
        };
        tokens.push((at, token));
    }
    tokens.push((text.len(), Token::End));
    tokens
}

/// Characters that end a word.
fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '(' | ')' | '=' | '!')
}

/// A recursive-descent parser over the tokens.
struct Parser<'a> {
    /// The selector text, for error messages.
    text: &'a str,
    /// The tokens, ending with [`Token::End`].
    tokens: Vec<(usize, Token)>,
    /// Index of the next token.
    next: usize,
}

impl Parser<'_> {
    /// The next token without consuming it.
    fn peek(&self) -> (usize, Token) {
        self.tokens
            .get(self.next)
            .cloned()
            .unwrap_or((self.text.len(), Token::End))
    }

    /// Consumes the next token.
    fn take(&mut self) -> (usize, Token) {
        let token = self.peek();
        self.next += 1;
        token
    }

    /// A syntax error at `position`.
    fn error(&self, position: usize, message: String) -> SelectorError {
        SelectorError::Syntax {
            selector: self.text.to_string(),
            position,
            message,
        }
    }

    /// `!key` | `key` | `key op value` | `key in|notin (values)`.
    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let requirement = |key: String, operator, values: BTreeSet<String>| Requirement {
            key,
            operator,
            values,
        };
        let key = match self.take() {
            (_, Token::Bang) => {
                let key = self.key()?;
                return Ok(requirement(key, Operator::DoesNotExist, BTreeSet::new()));
            }
            (_, Token::Word(key)) => key,
            (at, token) => {
                return Err(self.error(at, format!("expected a label key, found {token}")));
            }
        };
        match self.peek() {
            (_, Token::Comma | Token::End) => Ok(requirement(key, Operator::Exists, BTreeSet::new())),
            (_, Token::Equals | Token::DoubleEquals) => {
                self.take();
                let value = self.value();
                Ok(requirement(key, Operator::Equals, BTreeSet::from([value])))
            }
            (_, Token::NotEquals) => {
                self.take();
                let value = self.value();
                Ok(requirement(key, Operator::NotEquals, BTreeSet::from([value])))
            }
            (_, Token::Word(word)) if word == "in" || word == "notin" => {
                self.take();
                let operator = if word == "in" {
                    Operator::In
                } else {
                    Operator::NotIn
                };
                let values = self.value_set(&word)?;
                Ok(requirement(key, operator, values))
            }
            (at, token) => Err(self.error(
                at,
                format!(
                    "expected one of '=', '==', '!=', 'in', 'notin', ',' after key {key:?}, found {token}"
                ),
            )),
        }
    }

    /// A key after `!`.
    fn key(&mut self) -> Result<String, SelectorError> {
        match self.take() {
            (_, Token::Word(key)) => Ok(key),
            (at, token) => {
                Err(self.error(at, format!("expected a label key after '!', found {token}")))
            }
        }
    }

    /// A value after `=`, `==` or `!=`; nothing before `,` or the end means the empty value.
    fn value(&mut self) -> String {
        match self.peek() {
            (_, Token::Word(value)) => {
                self.take();
                value
            }
            _ => String::new(),
        }
    }

    /// `(a, b, …)` after `in` or `notin`; the set may not be empty.
    fn value_set(&mut self, operator: &str) -> Result<BTreeSet<String>, SelectorError> {
        match self.take() {
            (_, Token::Open) => {}
            (at, token) => {
                return Err(self.error(
                    at,
                    format!("expected '(' after '{operator}', found {token}"),
                ));
            }
        }
        if let (at, Token::Close) = self.peek() {
            return Err(self.error(
                at,
                format!("for '{operator}' the set of values can't be empty"),
            ));
        }
        let mut values = BTreeSet::new();
        loop {
            values.insert(self.value());
            match self.take() {
                (_, Token::Comma) => continue,
                (_, Token::Close) => return Ok(values),
                (at, token) => {
                    return Err(self.error(
                        at,
                        format!("expected ',' or ')' in the set of values, found {token}"),
                    ));
                }
            }
        }
    }
}
