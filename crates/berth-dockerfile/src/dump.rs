//! The `dump` printer: BuildKit's `Node.Dump()` s-expression format, byte for
//! byte (see `shared/conformance/README.md` §3).

use crate::ast::{Args, Dockerfile, Instruction};
use crate::text::go_quote_into;

/// The whole file: one `(instruction)` line each, ending in a newline.
pub fn dump(df: &Dockerfile) -> String {
    let mut out = String::new();
    for instruction in &df.instructions {
        out.push('(');
        write_instruction(&mut out, instruction);
        out.push_str(")\n");
    }
    out
}

/// One instruction without the surrounding parentheses.
pub fn dump_instruction(instruction: &Instruction) -> String {
    let mut out = String::new();
    write_instruction(&mut out, instruction);
    out
}

fn write_instruction(out: &mut String, instruction: &Instruction) {
    out.push_str(&instruction.keyword.text.to_lowercase());
    if !instruction.flags.is_empty() {
        out.push_str(" [");
        for (i, flag) in instruction.flags.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            go_quote_into(out, &flag.text);
        }
        out.push(']');
    }
    match &instruction.args {
        Args::Values(values) => {
            for value in values {
                out.push(' ');
                go_quote_into(out, &value.text);
            }
        }
        Args::Trigger(sub) => {
            out.push_str(" (");
            write_instruction(out, sub);
            out.push(')');
        }
    }
}
