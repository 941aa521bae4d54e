//! The crate's modules in layers: each imports only modules of the layers
//! below it, so that no two modules import each other and a module and its
//! parent use each other's items one way only.

use std::fs;
use std::path::Path;

/// Every module, lowest first; a module may use the modules before it.
const LAYERS: [&str; 22] = [
    "real",
    "data",
    "cblas",
    "openblas",
    "port::network",
    "port::batched",
    "port::parallel",
    "port",
    "kernels::isa",
    "kernels::vector::exp",
    "kernels::vector",
    "kernels::layout",
    "kernels::outer",
    "kernels::sweep::products",
    "kernels::sweep",
    "kernels::tiles",
    "kernels::gemm",
    "kernels",
    "kernels::team::sync",
    "kernels::team",
    "strategy",
    "python",
];

/// The module a source file under src/ defines: kernels/sweep/mod.rs is kernels::sweep.
fn module_of(relative: &str) -> String {
    let path = relative.trim_end_matches(".rs").trim_end_matches("/mod");
    path.replace('/', "::")
}

/// The modules the code of `module` names through `crate::`, `super::` or
/// `self::` paths, outside its tests (whose `super` is the module itself).
fn uses(module: &str, source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
    let here: Vec<String> = module.split("::").map(String::from).collect();
    let mut found = Vec::new();
    for (start, _) in code.match_indices("::") {
        let before = &code[..start];
        let Some(root) = ["crate", "super", "self"].into_iter().find(|r| {
            let rest = before.strip_suffix(r);
            rest.is_some_and(|rest| !rest.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$'))
        }) else {
            continue;
        };
        let mut path: Vec<String> = match root {
            "crate" => vec![],
            "super" => here[..here.len() - 1].to_vec(),
            _ => here.clone(),
        };
        // the longest run of segments that names a module
        for segment in code[start + 2..].split("::") {
            let name: String = segment.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let longer = [path.clone(), vec![name]].concat().join("::");
            if !LAYERS.contains(&longer.as_str()) {
                break;
            }
            path = longer.split("::").map(String::from).collect();
        }
        let target = path.join("::");
        if !target.is_empty() && target != module {
            found.push(target);
        }
    }
    found
}

#[test]
fn paths_resolve_to_the_modules_they_name() {
    let source = "use super::layout::{a, B};\nuse super::Fused;\nuse crate::real::Real;\nlet _ = self::sync::X;\nmacro! { $crate::port::Y }\n";
    assert_eq!(uses("kernels::team", source), ["kernels::layout", "kernels", "real", "kernels::team::sync"]);
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "lib.rs") {
            let relative = path.strip_prefix(root).expect("under src/").to_string_lossy().into_owned();
            out.push((module_of(&relative), fs::read_to_string(&path).expect("a source file")));
        }
    }
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    assert_eq!(files.len(), LAYERS.len(), "every module in LAYERS, and only those");
    for (module, source) in &files {
        let rank = LAYERS.iter().position(|m| m == module).unwrap_or_else(|| panic!("{module} is not in LAYERS"));
        for used in uses(module, source) {
            let below = LAYERS.iter().position(|m| *m == used).is_some_and(|r| r < rank);
            assert!(below, "{module} uses {used}, which is not below it");
        }
    }
}
