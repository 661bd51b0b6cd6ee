"""Brazil: authorised NF-e / NFC-e (``nfeProc``) and CT-e (``cteProc``)."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from docmail.einvoice.model import (
    NFE_TDEC_1110V,
    NFE_TDEC_1302,
    EInvoice,
    TaxParty,
    check_count,
    checked_amount,
    invalid,
    parse_amount,
    parse_day,
    require,
)
from docmail.einvoice.safexml import Reader

NFE_NS = "http://www.portalfiscal.inf.br/nfe"
CTE_NS = "http://www.portalfiscal.inf.br/cte"
AUTHORISED = {"100", "150"}  # autorizado o uso; autorizado fora de prazo
MAX_ITEMS = 500  # items kept for the printed form
#: Authorised NF-e/CT-e XML (nfeProc/cteProc): SEFAZ's messages are at most 500 KB
#: (Manual de Orientação do Contribuinte 7.0); twice that for the protocol and indentation.
MAX_XML_BYTES = 1024 * 1024
#: NF-e layout 4.00: det/@nItem is TnItem, 1 to 990 (leiauteNFe_v4.00.xsd).
NFE_MAX_ITEMS = 990
#: Item values checked by their layout type (qCom, a TDec_1104v, is printed as written).
ITEM_AMOUNTS = {"vUnCom": NFE_TDEC_1110V, "vProd": NFE_TDEC_1302}
# CT-e ``toma``: which party pays the freight (and so receives the CT-e).
TAKER_ROLES = {"0": "rem", "1": "exped", "2": "receb", "3": "dest"}


def _party(r: Reader, el: Element | None, what: str) -> TaxParty:
    if el is None:
        raise invalid(f"file: the {what} is missing; there is nobody to send it to")
    tax_id = r.first_text(el, "CNPJ", "CPF", "idEstrangeiro")
    return TaxParty(require(tax_id, f"{what} CNPJ/CPF"), r.text(el, "xNome") or "")


def _protocol(r: Reader, root: Element, what: str, key_tag: str) -> dict[str, str]:
    prot = r.find(root, f"prot{what}/infProt")
    if prot is None:
        raise invalid(
            f"file: the {what} has no authorisation protocol (prot{what}); "
            f"import the processed XML ({what.lower()}Proc) SEFAZ returned"
        )
    status = r.text(prot, "cStat") or ""
    if status not in AUTHORISED:
        reason = r.text(prot, "xMotivo") or ""
        raise invalid(f"file: the {what} is not authorised (cStat {status} {reason})".strip())
    keys = ("nProt", "dhRecbto", "cStat", "xMotivo", "tpAmb", "digVal")
    values = {k: r.text(prot, k) or "" for k in keys}
    values["chave"] = r.text(prot, key_tag) or ""
    return values


def _access_key(info: Element, prefix: str, protocol: dict[str, str]) -> str:
    key = (info.get("Id") or "").removeprefix(prefix) or protocol["chave"]
    if len(key) != 44 or not key.isdigit():
        raise invalid(f"file: access key {key!r} must have 44 digits")
    if protocol["chave"] and protocol["chave"] != key:
        raise invalid(f"file: the protocol's key {protocol['chave']} differs from {key}")
    return key


def _number(serie: str | None, number: str) -> str:
    return f"{serie}-{number}" if serie else number


def _items(r: Reader, info: Element) -> list[dict[str, str]]:
    items = r.findall(info, "det")
    check_count(len(items), "det", NFE_MAX_ITEMS, "the NF-e 4.00 layout (nItem 1-990)")
    keys = ("cProd", "xProd", "NCM", "CFOP", "uCom", "qCom")
    return [
        {
            **{k: r.text(det, f"prod/{k}") or "" for k in keys},
            **{
                k: checked_amount(r.text(det, f"prod/{k}"), f"det/prod/{k}", rule)
                for k, rule in ITEM_AMOUNTS.items()
            },
        }
        for det in items[:MAX_ITEMS]
    ]


def _total(r: Reader, info: Element, name: str) -> str:
    return checked_amount(r.text(info, f"total/ICMSTot/{name}"), f"ICMSTot/{name}", NFE_TDEC_1302)


def parse_nfe(root: Element) -> EInvoice:
    """An authorised NF-e (mod 55) or NFC-e (mod 65) inside ``nfeProc``."""
    r = Reader(NFE_NS)
    info = r.find(root, "NFe/infNFe")
    if info is None:
        raise invalid("file: nfeProc has no NFe/infNFe")
    protocol = _protocol(r, root, "NFe", "chNFe")
    key = _access_key(info, "NFe", protocol)
    ide = r.find(info, "ide")
    number = require(r.text(ide, "nNF"), "ide nNF")
    issuer = _party(r, r.find(info, "emit"), "emitente")
    total = parse_amount(r.text(info, "total/ICMSTot/vNF"), "ICMSTot/vNF", NFE_TDEC_1302)
    nfe: dict[str, Any] = {
        "modelo": r.text(ide, "mod") or "",
        "serie": r.text(ide, "serie") or "",
        "numero": number,
        "natureza_operacao": r.text(ide, "natOp") or "",
        "data_emissao": r.first_text(ide, "dhEmi", "dEmi") or "",
        "ambiente": r.text(ide, "tpAmb") or "",
        "chave": key,
        "protocolo": protocol["nProt"],
        "data_autorizacao": protocol["dhRecbto"],
        "status": protocol["cStat"],
        "motivo": protocol["xMotivo"],
        "emitente_ie": r.text(info, "emit/IE") or "",
        "emitente_fantasia": r.text(info, "emit/xFant") or "",
        "valor_produtos": _total(r, info, "vProd"),
        "valor_icms": _total(r, info, "vICMS"),
        "itens": _items(r, info),
    }
    return EInvoice(
        country="BR",
        format="nfe" if nfe["modelo"] != "65" else "nfce",
        doc_type="nfe",
        number=_number(nfe["serie"], number),
        issue_date=parse_day(nfe["data_emissao"], "ide dhEmi"),
        issuer=issuer,
        receiver=_party(r, r.find(info, "dest"), "destinatário"),
        total=total,
        currency="BRL",
        fiscal_id=key,
        data={"nfe": nfe},
    )


def _cte_taker(r: Reader, info: Element) -> tuple[TaxParty, str]:
    ide = r.find(info, "ide")
    other = r.find(ide, "toma4")
    if other is not None:
        return _party(r, other, "tomador"), "4"
    code = r.first_text(ide, "toma3/toma", "toma03/toma") or "0"
    role = TAKER_ROLES.get(code)
    if role is None:
        raise invalid(f"file: CT-e toma {code!r} is not 0, 1, 2, 3 or toma4")
    return _party(r, r.find(info, role), f"tomador ({role})"), code


def parse_cte(root: Element) -> EInvoice:
    """An authorised CT-e inside ``cteProc``; the receiver is the tomador (who pays)."""
    r = Reader(CTE_NS)
    info = r.find(root, "CTe/infCte")
    if info is None:
        raise invalid("file: cteProc has no CTe/infCte")
    protocol = _protocol(r, root, "CTe", "chCTe")
    key = _access_key(info, "CTe", protocol)
    ide = r.find(info, "ide")
    number = require(r.text(ide, "nCT"), "ide nCT")
    taker, toma = _cte_taker(r, info)
    cte = {
        "modelo": r.text(ide, "mod") or "",
        "serie": r.text(ide, "serie") or "",
        "numero": number,
        "natureza_operacao": r.text(ide, "natOp") or "",
        "cfop": r.text(ide, "CFOP") or "",
        "data_emissao": r.text(ide, "dhEmi") or "",
        "ambiente": r.text(ide, "tpAmb") or "",
        "origem": f"{r.text(ide, 'xMunIni') or ''}/{r.text(ide, 'UFIni') or ''}",
        "destino": f"{r.text(ide, 'xMunFim') or ''}/{r.text(ide, 'UFFim') or ''}",
        "tomador": toma,
        "chave": key,
        "protocolo": protocol["nProt"],
        "data_autorizacao": protocol["dhRecbto"],
        "status": protocol["cStat"],
        "motivo": protocol["xMotivo"],
    }
    return EInvoice(
        country="BR",
        format="cte",
        doc_type="cte",
        number=_number(cte["serie"], number),
        issue_date=parse_day(cte["data_emissao"], "ide dhEmi"),
        issuer=_party(r, r.find(info, "emit"), "emitente"),
        receiver=taker,
        total=parse_amount(r.text(info, "vPrest/vTPrest"), "vPrest/vTPrest", NFE_TDEC_1302),
        currency="BRL",
        fiscal_id=key,
        data={"cte": cte},
    )
