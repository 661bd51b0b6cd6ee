"""Mexico: CFDI 3.3/4.0 (ingreso, egreso, pago with Pagos 2.0) and Retenciones 2.0."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element

from docmail.einvoice.model import (
    CFDI_IMPORTE,
    EInvoice,
    TaxParty,
    check_count,
    checked_amount,
    invalid,
    parse_amount,
    parse_day,
    require,
)
from docmail.einvoice.safexml import descendant

CFDI_NAMESPACES = {"http://www.sat.gob.mx/cfd/4": "cfdi40", "http://www.sat.gob.mx/cfd/3": "cfdi33"}
RETENTION_NAMESPACES = {
    "http://www.sat.gob.mx/esquemas/retencionpago/2": "retenciones20",
    "http://www.sat.gob.mx/esquemas/retencionpago/1": "retenciones10",
}
TFD_NS = "http://www.sat.gob.mx/TimbreFiscalDigital"
PAGOS_NAMESPACES = ("http://www.sat.gob.mx/Pagos20", "http://www.sat.gob.mx/Pagos")
MAX_LINES = 500  # concept lines kept for the printed form
#: SAT's Anexo 20 sets no number of Conceptos; docmail refuses more than this (a CFDI with
#: 5,000 lines is already a few MB; the PACs' own size limits are lower).
MAX_CONCEPTOS = 5000

# TipoDeComprobante -> docmail document type; T (traslado) and N (nómina) are not mailed here.
CFDI_TYPES = {"I": "invoice", "E": "credit_note", "P": "payment"}


def _number(serie: str | None, folio: str | None, uuid: str) -> str:
    if folio:
        return f"{serie}-{folio}" if serie else folio
    return uuid


def _stamp(root: Element) -> dict[str, str]:
    """The TimbreFiscalDigital's attributes; a CFDI without one is not stamped yet."""
    tfd = descendant(root, TFD_NS, "TimbreFiscalDigital")
    if tfd is None or not tfd.get("UUID"):
        raise invalid(
            "file: the CFDI has no TimbreFiscalDigital (UUID); import it once the PAC stamped it"
        )
    keys = ("UUID", "FechaTimbrado", "RfcProvCertif", "NoCertificadoSAT", "SelloCFD", "SelloSAT")
    return {k: tfd.get(k, "") for k in keys}


def _concepts(root: Element, ns: str) -> list[dict[str, str]]:
    lines = root.findall(f"{{{ns}}}Conceptos/{{{ns}}}Concepto")
    check_count(len(lines), "Conceptos/Concepto", MAX_CONCEPTOS, "docmail")
    keys = ("ClaveProdServ", "ClaveUnidad", "Unidad", "Descripcion")
    return [
        {
            **{k: c.get(k, "") for k in keys},
            **{k: _amount(c, "Concepto", k) for k in ("Cantidad", "ValorUnitario", "Importe")},
        }
        for c in lines[:MAX_LINES]
    ]


def _amount(el: Element, where: str, attribute: str) -> str:
    """An attribute of ``el`` checked as a t_Importe (kept as written)."""
    return checked_amount(el.get(attribute), f"{where}/@{attribute}", CFDI_IMPORTE)


def _pagos(root: Element) -> tuple[list[dict[str, Any]], dict[str, str]]:
    for ns in PAGOS_NAMESPACES:
        pagos = descendant(root, ns, "Pagos")
        if pagos is not None:
            break
    else:
        raise invalid("file: a CFDI of type P must carry the Pagos complement")
    payments = []
    for pago in pagos.findall(f"{{{ns}}}Pago"):
        docs = [
            {
                "id_documento": d.get("IdDocumento", ""),
                "serie": d.get("Serie", ""),
                "folio": d.get("Folio", ""),
                "moneda": d.get("MonedaDR", ""),
                "num_parcialidad": d.get("NumParcialidad", ""),
                "imp_saldo_ant": _amount(d, "DoctoRelacionado", "ImpSaldoAnt"),
                "imp_pagado": _amount(d, "DoctoRelacionado", "ImpPagado"),
                "imp_saldo_insoluto": _amount(d, "DoctoRelacionado", "ImpSaldoInsoluto"),
            }
            for d in pago.findall(f"{{{ns}}}DoctoRelacionado")
        ]
        payments.append(
            {
                "fecha_pago": pago.get("FechaPago", ""),
                "forma_pago": pago.get("FormaDePagoP", ""),
                "moneda": pago.get("MonedaP", ""),
                "tipo_cambio": _amount(pago, "Pago", "TipoCambioP"),
                "monto": _amount(pago, "Pago", "Monto"),
                "num_operacion": pago.get("NumOperacion", ""),
                "documentos": docs,
            }
        )
    totals_el = pagos.find(f"{{{ns}}}Totales")
    totals = dict(totals_el.attrib) if totals_el is not None else {}
    return payments, totals


def _payment_total(payments: list[dict[str, Any]], totals: dict[str, str]) -> tuple[Any, str]:
    """Pagos 2.0 states the total in MXN; otherwise sum the payments of one currency."""
    if totals.get("MontoTotalPagos"):
        where = "Pagos/Totales/@MontoTotalPagos"
        return parse_amount(totals["MontoTotalPagos"], where, CFDI_IMPORTE), "MXN"
    currencies = {p["moneda"] for p in payments}
    if len(currencies) != 1:
        return None, "MXN"
    amounts = [
        parse_amount(p["monto"], "Pago/@Monto", CFDI_IMPORTE) or Decimal(0) for p in payments
    ]
    return sum(amounts, Decimal(0)), currencies.pop()


def parse_cfdi(root: Element, ns: str) -> EInvoice:
    """A stamped CFDI (root ``cfdi:Comprobante``)."""
    kind = root.get("TipoDeComprobante", "")
    doc_type = CFDI_TYPES.get(kind)
    if doc_type is None:
        raise invalid(
            f"file: CFDI TipoDeComprobante {kind!r} is not imported; "
            "use I (ingreso), E (egreso) or P (pago)"
        )
    stamp = _stamp(root)
    emisor = root.find(f"{{{ns}}}Emisor")
    receptor = root.find(f"{{{ns}}}Receptor")
    if emisor is None or receptor is None:
        raise invalid("file: the CFDI lacks its Emisor or Receptor")
    total = parse_amount(root.get("Total"), "Comprobante/@Total", CFDI_IMPORTE)
    currency = root.get("Moneda") or "MXN"
    cfdi = {
        "version": root.get("Version", ""),
        "tipo": kind,
        "serie": root.get("Serie", ""),
        "folio": root.get("Folio", ""),
        "fecha": root.get("Fecha", ""),
        "forma_pago": root.get("FormaPago", ""),
        "metodo_pago": root.get("MetodoPago", ""),
        "moneda": currency,
        "tipo_cambio": _amount(root, "Comprobante", "TipoCambio"),
        "subtotal": _amount(root, "Comprobante", "SubTotal"),
        "descuento": _amount(root, "Comprobante", "Descuento"),
        "total": (root.get("Total") or "").strip(),
        "lugar_expedicion": root.get("LugarExpedicion", ""),
        "no_certificado": root.get("NoCertificado", ""),
        "emisor_regimen": emisor.get("RegimenFiscal", ""),
        "receptor_regimen": receptor.get("RegimenFiscalReceptor", ""),
        "receptor_cp": receptor.get("DomicilioFiscalReceptor", ""),
        "uso_cfdi": receptor.get("UsoCFDI", ""),
        "impuestos_trasladados": _tax_total(root, ns, "TotalImpuestosTrasladados"),
        "impuestos_retenidos": _tax_total(root, ns, "TotalImpuestosRetenidos"),
        "conceptos": _concepts(root, ns),
        "timbre": _timbre(stamp),
        "sello_digest": root.get("Sello", "")[-8:],
    }
    data: dict[str, Any] = {"cfdi": cfdi}
    if kind == "P":
        data["pagos"], data["pagos_totales"] = _pagos(root)
        total, currency = _payment_total(data["pagos"], data["pagos_totales"])
    uuid = stamp["UUID"]
    return EInvoice(
        country="MX",
        format=CFDI_NAMESPACES[ns],
        doc_type=doc_type,
        number=_number(root.get("Serie"), root.get("Folio"), uuid),
        issue_date=parse_day(root.get("Fecha"), "Comprobante Fecha"),
        issuer=TaxParty(require(emisor.get("Rfc"), "Emisor Rfc"), emisor.get("Nombre", "")),
        receiver=TaxParty(require(receptor.get("Rfc"), "Receptor Rfc"), receptor.get("Nombre", "")),
        total=total,
        currency=currency,
        fiscal_id=uuid,
        data=data,
    )


def _tax_total(root: Element, ns: str, attribute: str) -> str:
    taxes = root.find(f"{{{ns}}}Impuestos")
    return "" if taxes is None else _amount(taxes, "Impuestos", attribute)


def _timbre(stamp: dict[str, str]) -> dict[str, str]:
    return {
        "uuid": stamp["UUID"],
        "fecha_timbrado": stamp["FechaTimbrado"],
        "rfc_prov_certif": stamp["RfcProvCertif"],
        "no_certificado_sat": stamp["NoCertificadoSAT"],
        "sello_cfd": stamp["SelloCFD"],
        "sello_sat": stamp["SelloSAT"],
    }


def _retention_receiver(root: Element, ns: str) -> TaxParty:
    receptor = root.find(f"{{{ns}}}Receptor")
    if receptor is None:
        raise invalid("file: the Retenciones document lacks its Receptor")
    for child in receptor:
        rfc = child.get("RfcR") or child.get("RFCRecep") or child.get("NumRegIdTribR")
        if rfc:
            return TaxParty(rfc, child.get("NomDenRazSocR", ""))
    raise invalid("file: the Retenciones Receptor has no RFC or tax registration number")


def parse_retention(root: Element, ns: str) -> EInvoice:
    """A stamped CFDI de Retenciones e información de pagos (root ``retenciones:Retenciones``)."""
    stamp = _stamp(root)
    emisor = root.find(f"{{{ns}}}Emisor")
    if emisor is None:
        raise invalid("file: the Retenciones document lacks its Emisor")
    issuer_rfc = emisor.get("RfcE") or emisor.get("RFCEmisor")
    totals = root.find(f"{{{ns}}}Totales")
    periodo = root.find(f"{{{ns}}}Periodo")
    uuid = stamp["UUID"]
    retention: dict[str, Any] = {
        "version": root.get("Version", ""),
        "folio_int": root.get("FolioInt", ""),
        "fecha_exp": root.get("FechaExp", ""),
        "clave_retencion": root.get("CveRetenc", ""),
        "periodo": dict(periodo.attrib) if periodo is not None else {},
        "totales": {k: v for k, v in (totals.attrib if totals is not None else {}).items()},
        "timbre": _timbre(stamp),
    }
    total = parse_amount(
        totals.get("MontoTotRet") if totals is not None else None,
        "Totales/@MontoTotRet",
        CFDI_IMPORTE,
    )
    return EInvoice(
        country="MX",
        format=RETENTION_NAMESPACES[ns],
        doc_type="retention",
        number=root.get("FolioInt") or uuid,
        issue_date=parse_day(root.get("FechaExp"), "Retenciones FechaExp"),
        issuer=TaxParty(require(issuer_rfc, "Emisor RfcE"), emisor.get("NomDenRazSocE", "")),
        receiver=_retention_receiver(root, ns),
        total=total,
        currency="MXN",
        fiscal_id=uuid,
        data={"retenciones": retention, "period": _period_text(retention["periodo"])},
    )


def _period_text(periodo: dict[str, str]) -> str:
    if not periodo:
        return ""
    return f"{periodo.get('MesIni', '')}-{periodo.get('MesFin', '')}/{periodo.get('Ejercicio', '')}"
