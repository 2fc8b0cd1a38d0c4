//! MLflow's search syntax, for runs and experiments: a filter of
//! comparisons joined by `AND` (`metrics.rmse < 1 and params.alpha =
//! '0.5' and tags.team LIKE 'fr%' and attributes.status = 'FINISHED'`)
//! and `order_by` clauses (`metrics.rmse DESC`, `start_time`), evaluated
//! over what the store returns; page tokens are offsets.

use std::cmp::Ordering;

use super::protocol::MlflowError;

/// What a comparison looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

/// A value something has under an entity and key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Number(f64),
    Text(String),
}

/// Something a filter or an ordering can look into: a run, an experiment.
pub(crate) trait Searchable {
    /// Its value of `entity` `key`, if it has one; an error for a key the
    /// entity never has (an unknown attribute).
    fn field(&self, entity: Entity, key: &str) -> Result<Option<Field>, MlflowError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Number(f64),
    Text(String),
    List(Vec<String>),
}

/// One comparison of a filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    entity: Entity,
    key: String,
    op: Op,
    value: Operand,
}

/// A parsed filter: every condition must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Filter(Vec<Condition>);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number(f64),
    Symbol(String),
    List(Vec<String>),
}

fn tokenize(text: &str) -> Result<Vec<Token>, MlflowError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let bad = |what: String| MlflowError::invalid(format!("invalid filter '{text}': {what}"));
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' || c == '`' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| bad(format!("unclosed {c}")))?;
            let inner: String = chars[i + 1..i + 1 + end].iter().collect();
            tokens.push(if c == '`' {
                Token::Word(inner)
            } else {
                Token::Quoted(inner)
            });
            i += end + 2;
        } else if c == '(' {
            let end = chars[i..]
                .iter()
                .position(|&d| d == ')')
                .ok_or_else(|| bad("unclosed (".to_owned()))?;
            let inner: String = chars[i + 1..i + end].iter().collect();
            let items = inner
                .split(',')
                .map(|item| {
                    item.trim()
                        .trim_matches(|q| q == '\'' || q == '"')
                        .to_owned()
                })
                .filter(|item| !item.is_empty())
                .collect();
            tokens.push(Token::List(items));
            i += end + 1;
        } else if "=!<>".contains(c) {
            let mut symbol = c.to_string();
            if chars.get(i + 1) == Some(&'=') {
                symbol.push('=');
                i += 1;
            }
            tokens.push(Token::Symbol(symbol));
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"=!<>()'\"`".contains(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match word.parse::<f64>() {
                Ok(n) if !word.contains('.') || !word.chars().any(char::is_alphabetic) => {
                    tokens.push(Token::Number(n))
                }
                _ => tokens.push(Token::Word(word)),
            }
        }
    }
    Ok(tokens)
}

/// `metrics.rmse`, `` params.`my key` ``, `status` (an attribute):
/// the entity and key of an identifier, whose key may have been quoted
/// into the next token.
fn identifier(word: &str, quoted_key: Option<&str>) -> Result<(Entity, String), MlflowError> {
    let (prefix, key) = match word.split_once('.') {
        Some((prefix, key)) => (prefix, key),
        None if quoted_key.is_none() => ("attributes", word),
        None => (word.trim_end_matches('.'), ""),
    };
    let key = match (key, quoted_key) {
        ("", Some(quoted)) => quoted,
        (key, _) => key,
    };
    let entity = match prefix.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Entity::Metric,
        "param" | "params" | "parameter" | "parameters" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        other => {
            return Err(MlflowError::invalid(format!(
                "'{other}' is not one of metrics, params, tags, attributes"
            )))
        }
    };
    if key.is_empty() {
        return Err(MlflowError::invalid(format!("'{word}' names no key")));
    }
    Ok((entity, key.to_owned()))
}

impl Filter {
    /// Parses MLflow's filter syntax; an empty string holds for all.
    pub(crate) fn parse(text: &str) -> Result<Filter, MlflowError> {
        let tokens = tokenize(text)?;
        let mut conditions = Vec::new();
        let mut rest = tokens.as_slice();
        let bad = |what: &str| MlflowError::invalid(format!("invalid filter '{text}': {what}"));
        while !rest.is_empty() {
            let Token::Word(word) = &rest[0] else {
                return Err(bad("expected an identifier such as metrics.rmse"));
            };
            rest = &rest[1..];
            // `` params.`key` `` arrives as the word `params.` and the key.
            let quoted_key = match (word.ends_with('.'), rest.first()) {
                (true, Some(Token::Word(key) | Token::Quoted(key))) => {
                    rest = &rest[1..];
                    Some(key.as_str())
                }
                _ => None,
            };
            let (entity, key) = identifier(word, quoted_key)?;
            let op = match rest.first() {
                Some(Token::Symbol(s)) => match s.as_str() {
                    "=" | "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => return Err(bad(&format!("unknown comparison '{s}'"))),
                },
                Some(Token::Word(w)) => match w.to_ascii_uppercase().as_str() {
                    "LIKE" => Op::Like,
                    "ILIKE" => Op::ILike,
                    "IN" => Op::In,
                    "NOT" => match rest.get(1) {
                        Some(Token::Word(w)) if w.eq_ignore_ascii_case("IN") => {
                            rest = &rest[1..];
                            Op::NotIn
                        }
                        _ => return Err(bad("NOT must be followed by IN")),
                    },
                    other => return Err(bad(&format!("unknown comparison '{other}'"))),
                },
                _ => return Err(bad(&format!("'{word}' is not compared with anything"))),
            };
            rest = &rest[1..];
            let value = match rest.first() {
                Some(Token::Number(n)) => Operand::Number(*n),
                Some(Token::Quoted(q)) => Operand::Text(q.clone()),
                Some(Token::List(items)) => Operand::List(items.clone()),
                _ => return Err(bad(&format!("'{word}' is compared with nothing"))),
            };
            rest = &rest[1..];
            let in_list = matches!(op, Op::In | Op::NotIn);
            if in_list != matches!(value, Operand::List(_)) {
                return Err(bad(
                    "IN and NOT IN take a list ('a', 'b'), and only they do",
                ));
            }
            if entity == Entity::Metric && !matches!(value, Operand::Number(_)) {
                return Err(bad(&format!("metric '{key}' is compared with a number")));
            }
            conditions.push(Condition {
                entity,
                key,
                op,
                value,
            });
            match rest.first() {
                None => {}
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("AND") => rest = &rest[1..],
                Some(_) => return Err(bad("conditions are joined by AND")),
            }
        }
        Ok(Filter(conditions))
    }

    /// Whether `item` meets every condition.
    pub(crate) fn matches(&self, item: &impl Searchable) -> Result<bool, MlflowError> {
        for condition in &self.0 {
            let Some(field) = item.field(condition.entity, &condition.key)? else {
                // Something it does not have is not equal to anything (MLflow's
                // clients filter `tag.x != 'true'` and expect untagged items).
                if matches!(condition.op, Op::Ne | Op::NotIn) {
                    continue;
                }
                return Ok(false);
            };
            if !condition.holds(&field) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Condition {
    fn holds(&self, field: &Field) -> bool {
        match (field, &self.value) {
            (Field::Number(x), Operand::Number(y)) => compare(self.op, x.partial_cmp(y)),
            (Field::Number(x), Operand::Text(y)) => y
                .parse::<f64>()
                .is_ok_and(|y| compare(self.op, x.partial_cmp(&y))),
            (Field::Text(x), Operand::Text(y)) => match self.op {
                Op::Like => like(x, y, false),
                Op::ILike => like(x, y, true),
                op => compare(op, Some(x.as_str().cmp(y.as_str()))),
            },
            (Field::Text(x), Operand::Number(y)) => x
                .parse::<f64>()
                .is_ok_and(|x| compare(self.op, x.partial_cmp(y))),
            (field, Operand::List(items)) => {
                let text = match field {
                    Field::Text(t) => t.clone(),
                    Field::Number(n) => n.to_string(),
                };
                items.contains(&text) == (self.op == Op::In)
            }
        }
    }
}

fn compare(op: Op, ordering: Option<Ordering>) -> bool {
    let Some(ordering) = ordering else {
        return op == Op::Ne;
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Like | Op::ILike | Op::In | Op::NotIn => false,
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` any one.
fn like(text: &str, pattern: &str, ignore_case: bool) -> bool {
    let (text, pattern): (Vec<char>, Vec<char>) = if ignore_case {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Classic wildcard matching with backtracking on the last `%`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '%')
}

/// One `order_by` clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderBy {
    entity: Entity,
    key: String,
    descending: bool,
}

impl OrderBy {
    /// Parses `metrics.rmse DESC`, `start_time`, `` params.`a b` ASC ``.
    pub(crate) fn parse(text: &str) -> Result<OrderBy, MlflowError> {
        let tokens = tokenize(text)?;
        let bad = || MlflowError::invalid(format!("invalid order_by clause '{text}'"));
        let (word, rest) = match tokens.as_slice() {
            [Token::Word(word), rest @ ..] => (word, rest),
            _ => return Err(bad()),
        };
        let (quoted_key, rest) = match (word.ends_with('.'), rest) {
            (true, [Token::Word(key) | Token::Quoted(key), rest @ ..]) => {
                (Some(key.as_str()), rest)
            }
            _ => (None, rest),
        };
        let (entity, key) = identifier(word, quoted_key)?;
        let descending = match rest {
            [] => false,
            [Token::Word(w)] if w.eq_ignore_ascii_case("ASC") => false,
            [Token::Word(w)] if w.eq_ignore_ascii_case("DESC") => true,
            _ => return Err(bad()),
        };
        Ok(OrderBy {
            entity,
            key,
            descending,
        })
    }

    /// Orders `items` by `clauses` in turn; missing values go last.
    pub(crate) fn sort<T: Searchable>(
        items: &mut [T],
        clauses: &[OrderBy],
    ) -> Result<(), MlflowError> {
        // Check every key once, so that sorting cannot fail halfway.
        if let Some(first) = items.first() {
            for clause in clauses {
                first.field(clause.entity, &clause.key)?;
            }
        }
        items.sort_by(|a, b| {
            for clause in clauses {
                let a = a.field(clause.entity, &clause.key).ok().flatten();
                let b = b.field(clause.entity, &clause.key).ok().flatten();
                let ordering = match (a, b) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(a), Some(b)) => {
                        let natural = match (a, b) {
                            (Field::Number(a), Field::Number(b)) => a.total_cmp(&b),
                            (Field::Text(a), Field::Text(b)) => a.cmp(&b),
                            (Field::Number(_), Field::Text(_)) => Ordering::Less,
                            (Field::Text(_), Field::Number(_)) => Ordering::Greater,
                        };
                        if clause.descending {
                            natural.reverse()
                        } else {
                            natural
                        }
                    }
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            Ordering::Equal
        });
        Ok(())
    }
}

/// What a search asks: which items, in which order, which page.
pub(crate) struct Search<'a> {
    pub(crate) filter: Filter,
    pub(crate) order_by: Vec<OrderBy>,
    pub(crate) max_results: usize,
    pub(crate) page_token: Option<&'a str>,
}

impl Search<'_> {
    /// The page of `items` the search asks for, as `{LIST: [...],
    /// next_page_token}` with each item as `to_json` writes it.
    pub(crate) fn answer<T: Searchable>(
        &self,
        items: Vec<T>,
        list: &str,
        to_json: impl Fn(&T) -> serde_json::Value,
    ) -> Result<serde_json::Value, MlflowError> {
        let mut found = Vec::new();
        for item in items {
            if self.filter.matches(&item)? {
                found.push(item);
            }
        }
        OrderBy::sort(&mut found, &self.order_by)?;
        let (shown, next) = page(found, self.max_results, self.page_token)?;
        let shown: Vec<serde_json::Value> = shown.iter().map(to_json).collect();
        let mut answer = serde_json::json!({ list: shown });
        if let Some(next) = next {
            answer["next_page_token"] = serde_json::json!(next);
        }
        Ok(answer)
    }
}

/// One page of `items`: at most `max_results` from the offset
/// `page_token` names, and the token of the next page.
pub(crate) fn page<T>(
    items: Vec<T>,
    max_results: usize,
    page_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), MlflowError> {
    let offset: usize = match page_token.filter(|t| !t.is_empty()) {
        Some(token) => token
            .parse()
            .map_err(|_| MlflowError::invalid(format!("invalid page_token '{token}'")))?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(max_results).collect();
    let next = offset + page.len();
    Ok((page, (next < total).then(|| next.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Item {
        metrics: BTreeMap<&'static str, f64>,
        params: BTreeMap<&'static str, &'static str>,
        status: &'static str,
    }

    impl Searchable for Item {
        fn field(&self, entity: Entity, key: &str) -> Result<Option<Field>, MlflowError> {
            Ok(match entity {
                Entity::Metric => self.metrics.get(key).map(|v| Field::Number(*v)),
                Entity::Param => self.params.get(key).map(|v| Field::Text((*v).into())),
                Entity::Tag => None,
                Entity::Attribute if key == "status" => Some(Field::Text(self.status.into())),
                Entity::Attribute => {
                    return Err(MlflowError::invalid(format!("no attribute {key}")))
                }
            })
        }
    }

    fn item(rmse: f64, alpha: &'static str, status: &'static str) -> Item {
        Item {
            metrics: BTreeMap::from([("rmse", rmse)]),
            params: BTreeMap::from([("alpha", alpha)]),
            status,
        }
    }

    #[test]
    fn filters_compare_metrics_params_and_attributes() {
        let run = item(0.4, "0.5", "FINISHED");
        let holds = |f: &str| Filter::parse(f).expect(f).matches(&run).expect("evaluates");
        assert!(holds(""));
        assert!(holds("metrics.rmse < 0.5"));
        assert!(holds("metrics.rmse < 0.5 and params.alpha = '0.5'"));
        assert!(holds(
            "metric.`rmse` >= 0.4 AND attributes.status = \"FINISHED\""
        ));
        assert!(holds("status != 'RUNNING'"));
        assert!(holds("params.alpha LIKE '0.%'"));
        assert!(holds("attributes.status ILIKE 'fin%'"));
        assert!(holds("attributes.status IN ('FINISHED', 'FAILED')"));
        assert!(!holds("attributes.status NOT IN ('FINISHED')"));
        assert!(!holds("metrics.rmse > 0.4"));
        assert!(!holds("metrics.missing > 0"));
        assert!(
            holds("tags.`mlflow.prompt.is_prompt` != 'true'"),
            "an absent tag is not equal"
        );
        for bad in [
            "rmse <",
            "metrics.rmse < 'a'",
            "colour.x = 'a'",
            "metrics.rmse < 1 or metrics.rmse > 2",
            "params.alpha = 'open",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
        let unknown = Filter::parse("attributes.colour = 'x'").expect("parses");
        assert!(unknown.matches(&run).is_err());
    }

    #[test]
    fn orderings_put_missing_values_last_and_pages_follow_on() {
        let mut items = vec![
            item(0.3, "a", "FINISHED"),
            Item {
                metrics: BTreeMap::new(),
                params: BTreeMap::new(),
                status: "RUNNING",
            },
            item(0.1, "b", "FINISHED"),
        ];
        let clauses = [OrderBy::parse("metrics.rmse DESC").expect("parses")];
        OrderBy::sort(&mut items, &clauses).expect("sorts");
        let order: Vec<Option<f64>> = items
            .iter()
            .map(|i| i.metrics.get("rmse").copied())
            .collect();
        assert_eq!(order, [Some(0.3), Some(0.1), None]);
        assert!(OrderBy::parse("metrics.rmse sideways").is_err());
        let (first, token) = page(vec![1, 2, 3], 2, None).expect("page");
        assert_eq!((first, token.as_deref()), (vec![1, 2], Some("2")));
        let (rest, token) = page(vec![1, 2, 3], 2, Some("2")).expect("page");
        assert_eq!((rest, token), (vec![3], None));
        assert!(page(vec![1], 1, Some("x")).is_err());
        assert!(like("fraud-eu", "fr%-_u", false));
        assert!(!like("fraud", "f_d", false));
    }
}
