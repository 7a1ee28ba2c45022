//! Comparing types: structural equality (aliases followed, anonymous
//! types part by part, nominal types by place), the members of records,
//! variants, enums and flags, and renamed types.

use super::*;

impl<'a> Engine<'a> {
    pub(super) fn corresponds(&self, old: &TypeKey, new: &TypeKey) -> bool {
        self.renames.get(old).unwrap_or(old) == new
    }

    /// Whether two type references mean the same type. Named nominal types
    /// are matched by place; their content is compared where defined.
    pub(super) fn same_type(&self, o: Type, n: Type) -> bool {
        if let (Type::Id(a), Type::Id(b)) = (o, n)
            && let (Some(ka), Some(kb)) = (type_key(self.old, a), type_key(self.new, b))
            && self.corresponds(&ka, &kb)
        {
            return true;
        }
        let (o, n) = (dealias(self.old, o), dealias(self.new, n));
        let (a, b) = match (o, n) {
            (Type::Id(a), Type::Id(b)) => (a, b),
            (Type::Id(_), _) | (_, Type::Id(_)) => return false,
            (o, n) => return o == n,
        };
        match (is_nominal(self.old, a), is_nominal(self.new, b)) {
            (true, true) => {
                return match (type_key(self.old, a), type_key(self.new, b)) {
                    (Some(ka), Some(kb)) => self.corresponds(&ka, &kb),
                    _ => false,
                };
            }
            (false, false) => {}
            _ => return false,
        }
        self.same_structure(a, b)
    }

    /// Compares two non-nominal type definitions part by part.
    pub(super) fn same_structure(&self, a: TypeId, b: TypeId) -> bool {
        let same_opt = |x: Option<Type>, y: Option<Type>| match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => self.same_type(x, y),
            _ => false,
        };
        use TypeDefKind as K;
        match (&self.old.types[a].kind, &self.new.types[b].kind) {
            (K::List(x), K::List(y)) | (K::Option(x), K::Option(y)) => self.same_type(*x, *y),
            (K::FixedLengthList(x, m), K::FixedLengthList(y, n)) => {
                m == n && self.same_type(*x, *y)
            }
            (K::Map(k1, v1), K::Map(k2, v2)) => {
                self.same_type(*k1, *k2) && self.same_type(*v1, *v2)
            }
            (K::Result(x), K::Result(y)) => same_opt(x.ok, y.ok) && same_opt(x.err, y.err),
            (K::Tuple(x), K::Tuple(y)) => {
                x.types.len() == y.types.len()
                    && x.types
                        .iter()
                        .zip(&y.types)
                        .all(|(p, q)| self.same_type(*p, *q))
            }
            (K::Handle(wit_parser::Handle::Own(x)), K::Handle(wit_parser::Handle::Own(y)))
            | (
                K::Handle(wit_parser::Handle::Borrow(x)),
                K::Handle(wit_parser::Handle::Borrow(y)),
            ) => self.same_type(Type::Id(*x), Type::Id(*y)),
            (K::Future(x), K::Future(y)) | (K::Stream(x), K::Stream(y)) => same_opt(*x, *y),
            _ => false,
        }
    }

    /// Differences between two member lists (fields, cases, flags, params).
    pub(super) fn members(
        &self,
        rules: &MemberRules,
        old: &[Member<'_>],
        new: &[Member<'_>],
    ) -> Vec<Found> {
        let mut out = Vec::new();
        let old_names: HashSet<&str> = old.iter().map(|m| m.name).collect();
        let new_names: HashSet<&str> = new.iter().map(|m| m.name).collect();
        let shown = |m: &Member<'_>, resolve: &Resolve| match m.ty {
            Some(ty) => format!("{}: {}", m.name, type_text(resolve, ty)),
            None => m.name.to_string(),
        };
        let same_ty = |a: &Member<'_>, b: &Member<'_>| match (a.ty, b.ty) {
            (None, None) => true,
            (Some(x), Some(y)) => self.same_type(x, y),
            _ => false,
        };
        let mut renamed_old = HashSet::new();
        let mut renamed_new = HashSet::new();
        if old_names == new_names {
            let same_order = old.iter().zip(new).all(|(a, b)| a.name == b.name);
            if !same_order {
                let list =
                    |ms: &[Member<'_>]| ms.iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
                out.push(Found {
                    rule: rules.reordered,
                    message: self.wording.pair(
                        &format!("the order of the {}", rules.plural),
                        &list(old),
                        &list(new),
                    ),
                    span: new.first().map(|m| SideSpan::New(m.span)),
                });
            }
        } else {
            for (a, b) in old.iter().zip(new) {
                if a.name != b.name
                    && !new_names.contains(a.name)
                    && !old_names.contains(b.name)
                    && same_ty(a, b)
                {
                    renamed_old.insert(a.name);
                    renamed_new.insert(b.name);
                    out.push(Found {
                        rule: rules.renamed,
                        message: self.wording.pair(
                            rules.noun,
                            &shown(a, self.old),
                            &shown(b, self.new),
                        ),
                        span: Some(SideSpan::New(b.span)),
                    });
                }
            }
            for m in old
                .iter()
                .filter(|m| !new_names.contains(m.name) && !renamed_old.contains(m.name))
            {
                out.push(Found {
                    rule: rules.removed,
                    message: self.wording.removed(&format!(
                        "{} `{}`",
                        rules.noun,
                        shown(m, self.old)
                    )),
                    span: Some(SideSpan::Old(m.span)),
                });
            }
            for m in new
                .iter()
                .filter(|m| !old_names.contains(m.name) && !renamed_new.contains(m.name))
            {
                out.push(Found {
                    rule: rules.added,
                    message: self.wording.added(&format!(
                        "{} `{}`",
                        rules.noun,
                        shown(m, self.new)
                    )),
                    span: Some(SideSpan::New(m.span)),
                });
            }
        }
        // wit-parser lets some lists repeat a name (variant cases): the
        // n-th member of a name pairs with the n-th of that name in NEW.
        let mut nth: HashMap<&str, usize> = HashMap::new();
        for a in old {
            let n = nth.entry(a.name).and_modify(|n| *n += 1).or_default();
            let Some(b) = new.iter().filter(|b| b.name == a.name).nth(*n) else {
                continue;
            };
            if !same_ty(a, b) {
                let rule = rules.type_changed.unwrap_or(rules.added);
                out.push(Found {
                    rule,
                    message: self.wording.pair(
                        rules.noun,
                        &shown(a, self.old),
                        &shown(b, self.new),
                    ),
                    span: Some(SideSpan::New(b.span)),
                });
            }
        }
        out
    }

    /// Differences in the content of two type definitions (after aliases).
    pub(super) fn content(&self, o: Type, n: Type) -> Vec<Found> {
        use TypeDefKind as K;
        let (o, n) = (dealias(self.old, o), dealias(self.new, n));
        let changed = |rule: ChangeRule| {
            vec![Found {
                rule,
                message: self.wording.pair(
                    "the type",
                    &definition_text(self.old, o),
                    &definition_text(self.new, n),
                ),
                span: None,
            }]
        };
        let (a, b) = match (o, n) {
            (Type::Id(a), Type::Id(b)) => (a, b),
            _ if self.same_type(o, n) => return Vec::new(),
            _ => return changed(ChangeRule::TypeChanged),
        };
        let (od, nd) = (&self.old.types[a], &self.new.types[b]);
        let fields = |r: &'a wit_parser::Record| -> Vec<Member<'a>> {
            r.fields
                .iter()
                .map(|f| Member {
                    name: &f.name,
                    ty: Some(f.ty),
                    span: f.span,
                })
                .collect()
        };
        match (&od.kind, &nd.kind) {
            (K::Record(x), K::Record(y)) => self.members(
                &MemberRules {
                    noun: "field",
                    plural: "fields",
                    added: ChangeRule::RecordFieldAdded,
                    removed: ChangeRule::RecordFieldRemoved,
                    renamed: ChangeRule::RecordFieldRenamed,
                    reordered: ChangeRule::RecordFieldsReordered,
                    type_changed: Some(ChangeRule::RecordFieldTypeChanged),
                },
                &fields(x),
                &fields(y),
            ),
            (K::Variant(x), K::Variant(y)) => {
                let cases = |v: &'a wit_parser::Variant| -> Vec<Member<'a>> {
                    v.cases
                        .iter()
                        .map(|c| Member {
                            name: &c.name,
                            ty: c.ty,
                            span: c.span,
                        })
                        .collect()
                };
                // Payload presence is part of the case's type.
                let (oc, nc) = (cases(x), cases(y));
                self.members(
                    &MemberRules {
                        noun: "case",
                        plural: "cases",
                        added: ChangeRule::VariantCaseAdded,
                        removed: ChangeRule::VariantCaseRemoved,
                        renamed: ChangeRule::VariantCaseRenamed,
                        reordered: ChangeRule::VariantCasesReordered,
                        type_changed: Some(ChangeRule::VariantCaseTypeChanged),
                    },
                    &oc,
                    &nc,
                )
            }
            (K::Enum(x), K::Enum(y)) => {
                let cases = |e: &'a wit_parser::Enum| -> Vec<Member<'a>> {
                    e.cases
                        .iter()
                        .map(|c| Member {
                            name: &c.name,
                            ty: None,
                            span: c.span,
                        })
                        .collect()
                };
                self.members(
                    &MemberRules {
                        noun: "case",
                        plural: "cases",
                        added: ChangeRule::EnumCaseAdded,
                        removed: ChangeRule::EnumCaseRemoved,
                        renamed: ChangeRule::EnumCaseRenamed,
                        reordered: ChangeRule::EnumCasesReordered,
                        type_changed: None,
                    },
                    &cases(x),
                    &cases(y),
                )
            }
            (K::Flags(x), K::Flags(y)) => {
                let flags = |f: &'a wit_parser::Flags| -> Vec<Member<'a>> {
                    f.flags
                        .iter()
                        .map(|c| Member {
                            name: &c.name,
                            ty: None,
                            span: c.span,
                        })
                        .collect()
                };
                self.members(
                    &MemberRules {
                        noun: "flag",
                        plural: "flags",
                        added: ChangeRule::FlagAdded,
                        removed: ChangeRule::FlagRemoved,
                        renamed: ChangeRule::FlagRenamed,
                        reordered: ChangeRule::FlagsReordered,
                        type_changed: None,
                    },
                    &flags(x),
                    &flags(y),
                )
            }
            (K::Resource, K::Resource) => Vec::new(),
            _ if is_nominal(self.old, a) || is_nominal(self.new, b) => vec![Found {
                rule: ChangeRule::TypeKindChanged,
                message: self.wording.pair(
                    "the kind",
                    kind_noun(self.old, o),
                    kind_noun(self.new, n),
                ),
                span: None,
            }],
            _ if self.same_structure(a, b) => Vec::new(),
            _ => changed(ChangeRule::TypeChanged),
        }
    }

    /// Compares two named type definitions of the same name.
    pub(super) fn typedef(&mut self, scope: &Scope, old: TypeId, new: TypeId) {
        let (od, nd) = (&self.old.types[old], &self.new.types[new]);
        let name = nd.name.clone().unwrap_or_default();
        let what = format!("{} `{name}`", type_noun(self.new, new));
        let unstable = scope.unstable
            || stability_is_unstable(&od.stability)
            || stability_is_unstable(&nd.stability);
        // `use x.{t}` on both sides, pointing at the same definition: the
        // definition itself is compared where it lives.
        let same_target = matches!(od.kind, TypeDefKind::Type(_))
            && matches!(nd.kind, TypeDefKind::Type(_))
            && match (
                dealias(self.old, Type::Id(old)),
                dealias(self.new, Type::Id(new)),
            ) {
                (Type::Id(a), Type::Id(b))
                    if is_nominal(self.old, a) && is_nominal(self.new, b) =>
                {
                    match (type_key(self.old, a), type_key(self.new, b)) {
                        (Some(ka), Some(kb)) => self.corresponds(&ka, &kb),
                        _ => false,
                    }
                }
                _ => false,
            };
        let found = if same_target {
            Vec::new()
        } else {
            self.content(Type::Id(old), Type::Id(new))
        };
        if found.is_empty() {
            let o_alias = matches!(od.kind, TypeDefKind::Type(_));
            let n_alias = matches!(nd.kind, TypeDefKind::Type(_));
            let retargeted = match (&od.kind, &nd.kind) {
                (TypeDefKind::Type(Type::Id(x)), TypeDefKind::Type(Type::Id(y))) => {
                    match (type_key(self.old, *x), type_key(self.new, *y)) {
                        (Some(kx), Some(ky)) => !self.corresponds(&kx, &ky),
                        _ => false,
                    }
                }
                _ => false,
            };
            if (o_alias != n_alias || retargeted) && self.wording == Wording::Diff {
                let message = format!(
                    "{what} stands for `{}`, was `{}`: the same definition through an alias, not a change",
                    qualified_text(self.new, Type::Id(new)),
                    qualified_text(self.old, Type::Id(old)),
                );
                let f = Found {
                    rule: ChangeRule::TypeAliasEquivalent,
                    message,
                    span: Some(SideSpan::New(nd.span)),
                };
                self.record(scope, Some(name.clone()), f, unstable);
            }
        }
        for mut f in found {
            f.message = format!("{what}: {}", f.message);
            f.span = f.span.or(Some(SideSpan::New(nd.span)));
            self.record(scope, Some(name.clone()), f, unstable);
        }
        self.annotations(
            scope,
            Some(name),
            &what,
            (&od.docs, &nd.docs),
            (&od.stability, &nd.stability),
            nd.span,
        );
    }

    /// Pairs removed and added types of one interface whose definitions are
    /// identical: those are renames.
    pub(super) fn detect_renames(&mut self, old: InterfaceId, new: InterfaceId) {
        let (old, new) = (
            &self.old.interfaces[old].types,
            &self.new.interfaces[new].types,
        );
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        for entry in diff_keyed(entries(old), entries(new)) {
            match entry {
                Keyed::Both(..) => {}
                Keyed::Added(key, new) => added.push((key, new)),
                Keyed::Removed(key, old) => removed.push((key, old)),
            }
        }
        let mut taken = HashSet::new();
        for (_, o) in removed {
            let ok = self.old.types[o].kind.as_str();
            let candidate = added.iter().find(|(n, id)| {
                !taken.contains(*n)
                    && self.new.types[*id].kind.as_str() == ok
                    && self.new.types[*id].kind != TypeDefKind::Resource
                    && self.content(Type::Id(o), Type::Id(*id)).is_empty()
            });
            if let Some((n, id)) = candidate
                && let (Some(ko), Some(kn)) = (type_key(self.old, o), type_key(self.new, *id))
            {
                taken.insert(*n);
                self.renames.insert(ko, kn);
            } else if self.old.types[o].kind == TypeDefKind::Resource
                && let Some((n, id)) = added.iter().find(|(n, id)| {
                    !taken.contains(*n)
                        && self.new.types[*id].kind == TypeDefKind::Resource
                        && self.same_methods(o, *id)
                })
                && let (Some(ko), Some(kn)) = (type_key(self.old, o), type_key(self.new, *id))
            {
                taken.insert(*n);
                self.renames.insert(ko, kn);
            }
        }
    }

    /// A resource counts as renamed when it has the same method names.
    pub(super) fn same_methods(&self, old: TypeId, new: TypeId) -> bool {
        let names = |resolve: &Resolve, id: TypeId| -> Vec<String> {
            let TypeOwnerInterface(Some(i)) = owner_interface(resolve, id) else {
                return Vec::new();
            };
            let mut v: Vec<String> = resolve.interfaces[i]
                .functions
                .values()
                .filter(|f| f.kind.resource() == Some(id))
                .map(|f| {
                    func_label(f)
                        .1
                        .split('.')
                        .next_back()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            v.sort();
            v
        };
        names(self.old, old) == names(self.new, new)
    }
}
