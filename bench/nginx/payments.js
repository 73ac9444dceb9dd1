// A contract-faithful stand-in for the payment service, fast enough never to be the bottleneck.
//
// POST /pay                       validate (cheaply), decline the contract's test cards with 402,
//                                 else 201 echoing amount, currency, card brand and last4.
// POST /internal/generate-report  internal token (401/403), {batch_id} -> exact per-currency totals
//                                 of that batch; {from, to} -> range checked (400), totals empty.
//
// Mirrors payment_contract/ (brands by prefix and length, Luhn, CVC length, currencies, limits,
// declining test cards). Idempotency is honoured minimally: the payment id is a hash of the
// Idempotency-Key, so a resend with the same key names the same payment; a key reused with
// another body is NOT detected (that needs state per key). Batch payments (metadata.batch_id)
// are appended to one small file per batch so the report reconciles exactly, resends included.
// njs 0.7 (Debian bookworm) has no shared dict, hence the files.

var fs = require('fs');
var crypto = require('crypto');

var CURRENCIES = {USD: 2, EUR: 2, GBP: 2, CAD: 2, AUD: 2, CHF: 2, SEK: 2, JPY: 0, KRW: 0};
var MIN_AMOUNT = 1;
var MAX_AMOUNT = 99999999;
var DECLINING = {
    '4000000000000002': 'generic_decline',
    '4000000000009995': 'insufficient_funds',
    '4000000000009987': 'lost_card',
    '4000000000009979': 'stolen_card',
    '4000000000000069': 'expired_card',
    '4000000000000127': 'incorrect_cvc',
    '4000000000000119': 'processing_error',
};
var LENGTHS = {visa: [13, 16, 19], mastercard: [16], amex: [15], discover: [16], jcb: [16]};
var REQUIRED = ['amount', 'currency', 'card', 'customer'];
var SAFE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

function batchDir() {
    return process.env.BENCH_BATCH_DIR || '/tmp';
}

function send(r, status, obj) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify(obj));
}

function fail(r, status, type, code, message, param) {
    send(r, status, {error: {type: type, code: code, decline_code: null, param: param || null, message: message}});
}

function luhnValid(number) {
    var total = 0;
    for (var i = 0; i < number.length; i++) {
        var d = number.charCodeAt(number.length - 1 - i) - 48;
        if (i % 2 === 1) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }
        total += d;
    }
    return total % 10 === 0;
}

function brandOf(number) {
    var brand = null;
    var p2 = +number.slice(0, 2);
    var p3 = +number.slice(0, 3);
    var p4 = +number.slice(0, 4);
    if (number[0] === '4') {
        brand = 'visa';
    } else if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) {
        brand = 'mastercard';
    } else if (p2 === 34 || p2 === 37) {
        brand = 'amex';
    } else if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) {
        brand = 'discover';
    } else if (p4 >= 3528 && p4 <= 3589) {
        brand = 'jcb';
    }
    return brand !== null && LENGTHS[brand].indexOf(number.length) >= 0 ? brand : null;
}

function paymentId(key) {
    if (key) {
        return 'pay_' + crypto.createHash('sha1').update(key).digest('hex').slice(0, 24);
    }
    return 'pay_' + Math.random().toString(16).slice(2, 14) + Date.now().toString(16);
}

// The first contract violation of a parsed /pay body as [code, param, message], or null.
function invalid(body) {
    for (var i = 0; i < REQUIRED.length; i++) {
        if (body[REQUIRED[i]] === undefined || body[REQUIRED[i]] === null) {
            return ['parameter_missing', REQUIRED[i], 'Missing required param: ' + REQUIRED[i] + '.'];
        }
    }
    var amount = body.amount;
    if (typeof amount !== 'number' || !Number.isInteger(amount)) {
        return ['invalid_amount', 'amount', 'amount must be an integer in minor units.'];
    }
    if (amount < MIN_AMOUNT) {
        return ['amount_too_small', 'amount', 'amount must be at least ' + MIN_AMOUNT + '.'];
    }
    if (amount > MAX_AMOUNT) {
        return ['amount_too_large', 'amount', 'amount must be at most ' + MAX_AMOUNT + '.'];
    }
    if (typeof body.currency !== 'string' || CURRENCIES[body.currency] === undefined) {
        return ['invalid_currency', 'currency', 'Unsupported currency.'];
    }
    var card = body.card;
    var number = typeof card === 'object' ? String(card.number || '') : '';
    if (!/^[0-9]{12,19}$/.test(number) || !luhnValid(number) || brandOf(number) === null) {
        return ['incorrect_number', 'card[number]', 'The card number is incorrect.'];
    }
    var month = card.exp_month;
    var year = card.exp_year;
    if (!Number.isInteger(month) || month < 1 || month > 12) {
        return ['invalid_expiry_month', 'card[exp_month]', 'The expiration month is invalid.'];
    }
    if (!Number.isInteger(year)) {
        return ['invalid_expiry_year', 'card[exp_year]', 'The expiration year is invalid.'];
    }
    var now = new Date();
    var thisYear = now.getUTCFullYear();
    if (year < thisYear || (year === thisYear && month < now.getUTCMonth() + 1)) {
        return ['expired_card', 'card[exp_year]', 'The card has expired.'];
    }
    var cvc = String(card.cvc === undefined ? '' : card.cvc);
    var cvcLength = brandOf(number) === 'amex' ? 4 : 3;
    if (cvc.length !== cvcLength || !/^[0-9]+$/.test(cvc)) {
        return ['invalid_cvc', 'card[cvc]', 'The card security code is invalid.'];
    }
    return null;
}

function pay(r) {
    var contentType = r.headersIn['Content-Type'] || '';
    if (contentType.indexOf('application/json') !== 0) {
        fail(r, 400, 'invalid_request_error', 'unsupported_content_type', 'Send application/json.');
        return;
    }
    var body;
    try {
        body = JSON.parse(r.requestText || '');
    } catch (e) {
        fail(r, 400, 'invalid_request_error', 'invalid_json', 'The body is not valid JSON.');
        return;
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        fail(r, 400, 'invalid_request_error', 'invalid_json', 'The body must be a JSON object.');
        return;
    }
    var problem = invalid(body);
    if (problem !== null) {
        fail(r, 422, 'invalid_request_error', problem[0], problem[2], problem[1]);
        return;
    }
    var number = String(body.card.number);
    var id = paymentId(r.headersIn['Idempotency-Key']);
    var decline = DECLINING[number] || null;
    var batch = body.metadata && body.metadata.batch_id;
    if (batch && SAFE_ID.test(batch)) {
        var line = id + ' ' + (decline ? 'declined' : 'succeeded') + ' ' + body.currency + ' ' + body.amount + '\n';
        fs.appendFileSync(batchDir() + '/' + batch, line);
    }
    if (decline !== null) {
        send(r, 402, {
            error: {
                type: 'card_error',
                code: decline === 'expired_card' || decline === 'incorrect_cvc' ? decline : 'card_declined',
                decline_code: decline,
                param: null,
                message: 'The card was declined: ' + decline + '.',
                payment_id: id,
            },
        });
        return;
    }
    send(r, 201, {
        id: id,
        status: 'succeeded',
        amount: body.amount,
        currency: body.currency,
        card: {brand: brandOf(number), last4: number.slice(-4)},
        created: new Date().toISOString(),
    });
}

function batchReport(batch) {
    var text = '';
    try {
        text = fs.readFileSync(batchDir() + '/' + batch, 'utf8');
    } catch (e) {
        text = '';
    }
    var byId = {};
    var lines = text.split('\n');
    for (var i = 0; i < lines.length; i++) {
        if (lines[i]) {
            byId[lines[i].split(' ', 1)[0]] = lines[i]; // a resend (same key) names the same id
        }
    }
    var totals = {};
    var succeeded = 0;
    var declined = 0;
    var ids = Object.keys(byId);
    for (var j = 0; j < ids.length; j++) {
        var f = byId[ids[j]].split(' ');
        if (f[1] === 'declined') {
            declined += 1;
            continue;
        }
        succeeded += 1;
        var t = totals[f[2]] || (totals[f[2]] = {count: 0, amount: 0});
        t.count += 1;
        t.amount += +f[3];
    }
    return {totals: totals, payments: {total: succeeded + declined, succeeded: succeeded, declined: declined}};
}

function report(r) {
    var auth = r.headersIn['Authorization'] || '';
    if (!auth) {
        fail(r, 401, 'authentication_error', 'missing_token', 'Send Authorization: Bearer <token>.');
        return;
    }
    if (auth !== 'Bearer ' + (process.env.PAYMENT_INTERNAL_TOKEN || '')) {
        fail(r, 403, 'authentication_error', 'invalid_token', 'The internal token is not valid.');
        return;
    }
    var filter;
    try {
        filter = JSON.parse(r.requestText || '{}');
    } catch (e) {
        fail(r, 400, 'invalid_request_error', 'invalid_json', 'The body is not valid JSON.');
        return;
    }
    filter = filter || {};
    var result;
    if (filter.batch_id !== undefined && filter.batch_id !== null) {
        if (!SAFE_ID.test(String(filter.batch_id))) {
            fail(r, 400, 'invalid_request_error', 'invalid_batch_id', 'batch_id is not valid.', 'batch_id');
            return;
        }
        result = batchReport(String(filter.batch_id));
        result.batch_id = filter.batch_id;
    } else {
        var from = filter.from ? Date.parse(filter.from) : null;
        var to = filter.to ? Date.parse(filter.to) : null;
        if ((filter.from && isNaN(from)) || (filter.to && isNaN(to)) || (from !== null && to !== null && from > to)) {
            fail(r, 400, 'invalid_request_error', 'invalid_range', 'from must be an ISO time before to.', 'from');
            return;
        }
        // A range report needs every payment on record; the stand-in keeps batches only.
        result = {totals: {}, payments: {total: 0, succeeded: 0, declined: 0}, from: filter.from || null, to: filter.to || null};
    }
    result.generated = new Date().toISOString();
    send(r, 200, result);
}

export default {pay, report};
