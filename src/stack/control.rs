//! deb822 control paragraphs: the one syntax shared by apt `.sources`, `Release`, `Packages`
//! and a package's `control` file.

/// One paragraph: fields in file order, values borrowed from the parsed text.
#[derive(Debug, Clone, Default)]
pub struct Paragraph<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Paragraph<'a> {
    /// The raw value of a field (case-insensitive name): the first line trimmed, continuation
    /// lines kept verbatim with their leading whitespace.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }

    /// A field's value with continuation lines unfolded the deb822 way: leading whitespace
    /// dropped and a lone `.` standing for an empty line (used by inline `Signed-By` keys).
    pub fn get_unfolded(&self, name: &str) -> Option<String> {
        let raw = self.get(name)?;
        let lines: Vec<&str> = raw
            .lines()
            .map(|line| {
                let line = line.trim();
                if line == "." { "" } else { line }
            })
            .collect();
        Some(lines.join("\n"))
    }

    /// Whether the paragraph has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Split `text` into paragraphs. Lines starting with `#` are comments (deb822 sources allow
/// them; index files never contain them). Malformed lines without a colon are skipped rather
/// than fatal, as apt does for unknown syntax in fields it does not read.
pub fn parse_paragraphs(text: &str) -> Vec<Paragraph<'_>> {
    let mut paragraphs = Vec::new();
    let mut current = Paragraph::default();
    // Byte span of the field being read: (name, value start, value end).
    let mut open: Option<(&str, usize, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let content_end = start + content.len();
        if content.trim().is_empty() {
            close_field(text, &mut open, &mut current);
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if content.starts_with('#') {
            continue;
        }
        if content.starts_with([' ', '\t']) {
            if let Some((_, _, end)) = open.as_mut() {
                *end = content_end;
            }
            continue;
        }
        close_field(text, &mut open, &mut current);
        if let Some(colon) = content.find(':') {
            let name = content[..colon].trim();
            let value_start = start + colon + 1;
            open = Some((name, value_start, content_end));
        }
    }
    close_field(text, &mut open, &mut current);
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

fn close_field<'a>(
    text: &'a str,
    open: &mut Option<(&'a str, usize, usize)>,
    paragraph: &mut Paragraph<'a>,
) {
    if let Some((name, start, end)) = open.take() {
        let value = text[start..end].trim_start_matches([' ', '\t']).trim_end();
        paragraph.fields.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paragraphs_and_keeps_continuations() {
        let text = "Package: a\nDescription: short\n long line\n .\n more\n\n\n# comment\nPackage: b\r\nVersion: 1\r\n";
        let paragraphs = parse_paragraphs(text);
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].get("package"), Some("a"));
        assert_eq!(
            paragraphs[0].get_unfolded("Description").unwrap(),
            "short\nlong line\n\nmore"
        );
        assert_eq!(paragraphs[1].get("Version"), Some("1"));
        assert_eq!(paragraphs[1].get("Missing"), None);
    }

    #[test]
    fn empty_value_with_list_on_continuation_lines() {
        let text = "SHA256:\n abc 12 main/x\n def 3 main/y\n";
        let paragraph = &parse_paragraphs(text)[0];
        let lines: Vec<&str> = paragraph
            .get("SHA256")
            .unwrap()
            .lines()
            .map(str::trim)
            .collect();
        assert_eq!(lines, ["", "abc 12 main/x", "def 3 main/y"]);
    }
}
