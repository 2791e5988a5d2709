/* lora-emotion payload codec (format 1), TS013 decodeUplink/encodeDownlink/decodeDownlink, ECMAScript 5.1. Minified from codecs/js/lora-emotion-codec.js by codecs/js/build.js: read and edit that file. To declare user label sets, set USER_LABEL_SETS below. */
var USER_LABEL_SETS=[],LE_BUILTIN_SETS=[[0,"fer2013",["angry","disgust","fear","happy","sad","surprise","neutral"]],[1,"ferplus",["neutral","happiness","surprise","sadness","anger","disgust","fear","contempt"]],[2,"physio3",["angry","happy","sad"]],[3,"valence3",["pleasant","unpleasant","neutral"]],[4,"ravdess",["neutral","calm","happy","sad","angry","fearful","disgust","surprised"]],[5,"tess",["anger","disgust","fear","happiness","pleasant_surprise","sadness","neutral"]]],LE_MAX_PAYLOAD=51,LE_STEPS=101,LE_WINDOW_RADIX=65536,LE_SKIN_RADIX=10002,LE_HEART_RADIX=252,LE_GAP_RADIX=4096,LE_SUMMARY_MAX=65535,LE_MAX_SET_ID=23,LE_MAX_CLASSES=64,LE_NO_FACE="none",LE_COMMAND_PORT=3,LE_RELAY_MAX_CLASSES=16,LE_MODES=["reading","distribution","summary","vitals"],LE_COMMAND_STATUS=["none","applied","rejected","unknown_command"],LE_STATUS_RADICES=[16,16,64,64,102,1048576,65536,65536,4,1024,24,65536,256,4],LE_NAME=/^[A-Za-z0-9][A-Za-z0-9._-]*$/
;function LeError(e,t,n){var r=[];null!=n&&r.push("byte "+n),null!=t&&r.push(r.length?"("+t+")":t),
this.message=r.length?r.join(" ")+": "+e:e}function leFail(e,t,n){throw new LeError(e,t,n)}
var LIMB=65536,SMALL_DIVISOR=68719476736;function bnTrim(e){for(;e.length&&0===e[e.length-1];)e.pop();return e}
function bnFromNumber(e){for(var t=[];e>0;)t.push(e%LIMB),e=Math.floor(e/LIMB);return t}function bnFromBytes(e,t,n){
var r,a=[];for(r=n;r-2>=t;r-=2)a.push(256*e[r-2]+e[r-1]);return r-1>=t&&a.push(e[r-1]),bnTrim(a)}function bnToNumber(e){
for(var t=0,n=e.length-1;n>=0;n--)t=t*LIMB+e[n];return t}function bnIsZero(e){return 0===e.length}function bnCmp(e,t){
if(e.length!==t.length)return e.length<t.length?-1:1;for(var n=e.length-1;n>=0;n--)if(e[n]!==t[n])return e[n]<t[n]?-1:1
;return 0}function bnAdd(e,t){for(var n=[],r=0,a=Math.max(e.length,t.length),i=0;i<a;i++){var o=(e[i]||0)+(t[i]||0)+r
;n.push(o%LIMB),r=o>=LIMB?1:0}return r&&n.push(r),n}function bnSub(e,t){for(var n=[],r=0,a=0;a<e.length;a++){
var i=e[a]-(t[a]||0)-r;r=i<0?1:0,n.push(i<0?i+LIMB:i)}return bnTrim(n)}function bnMulSmall(e,t){
for(var n=[],r=0,a=0;a<e.length;a++){var i=e[a]*t+r;n.push(i%LIMB),r=Math.floor(i/LIMB)}for(;r>0;)n.push(r%LIMB),
r=Math.floor(r/LIMB);return bnTrim(n)}function bnMul(e,t){if(!e.length||!t.length)return[];var n,r,a=[]
;for(n=0;n<e.length+t.length;n++)a.push(0);for(n=0;n<e.length;n++){var i=0;for(r=0;r<t.length;r++){
var o=a[n+r]+e[n]*t[r]+i;a[n+r]=o%LIMB,i=Math.floor(o/LIMB)}for(var l=n+t.length;i>0;){var s=a[l]+i;a[l]=s%LIMB,
i=Math.floor(s/LIMB),l++}}return bnTrim(a)}function bnDivSmall(e,t){for(var n=[],r=0,a=e.length-1;a>=0;a--){
var i=r*LIMB+e[a],o=Math.floor(i/t);n[a]=o,r=i-o*t}return[bnTrim(n),r]}function bnBitLength(e){if(!e.length)return 0
;for(var t=e[e.length-1],n=0;t>0;)n++,t=Math.floor(t/2);return 16*(e.length-1)+n}function bnShiftLeft1(e){
for(var t=0,n=0;n<e.length;n++){var r=2*e[n]+t;e[n]=65535&r,t=r>>16}return t&&e.push(t),e}function bnDivmod(e,t){
if(t.length<=2){var n=bnDivSmall(e,bnToNumber(t));return[n[0],bnFromNumber(n[1])]}if(bnCmp(e,t)<0)return[[],e.slice()]
;for(var r=[],a=[],i=bnBitLength(e)-1;i>=0;i--)if(bnShiftLeft1(a),e[i>>4]>>(15&i)&1&&(a.length?a[0]|=1:a.push(1)),
bnCmp(a,t)>=0){for(a=bnSub(a,t);r.length<=i>>4;)r.push(0);r[i>>4]|=1<<(15&i)}return[bnTrim(r),a]}function bnPow(e,t){
for(var n=[1],r=0;r<t;r++)n=bnMul(n,e);return n}function bnByteLength(e){var t=bnBitLength(bnSub(e,[1]))
;return Math.max(1,Math.ceil(t/8))}var combCache={},combCacheSize=0,COMB_CACHE_LIMIT=2e4;function bnComb(e,t){
if(t<0||e<0||t>e)return[];t>e-t&&(t=e-t);var n=e+","+t,r=combCache[n];if(r)return r
;for(var a=[1],i=1;i<=t;i++)a=bnDivSmall(bnMulSmall(a,e-t+i),i)[0]
;return combCacheSize>=COMB_CACHE_LIMIT&&(combCache={},combCacheSize=0),combCache[n]=a,combCacheSize++,a}
function unrankComposition(e,t,n){for(var r=[],a=t,i=0;i<n-1;i++){for(var o=n-1-i,l=bnComb(a+o,o),s=0,u=a;s<u;){
var c=Math.floor((s+u+1)/2);bnCmp(bnSub(l,bnComb(a-c+o,o)),e)<=0?s=c:u=c-1}e=bnSub(e,bnSub(l,bnComb(a-s+o,o))),
r.push(s),a-=s}return r.push(a),r}function unrankBounded(e,t,n){if(bnCmp(e,bnComb(n+t,t))>=0)return null
;for(var r=0,a=n;r<a;){var i=Math.floor((r+a+1)/2);bnCmp(bnComb(i-1+t,t),e)<=0?r=i:a=i-1}
return unrankComposition(bnSub(e,bnComb(r-1+t,t)),r,t)}function unpackDigits(e,t){for(var n=[],r=t.length-1;r>=0;r--){
var a=bnDivmod(e,t[r]);n[r]=a[1],e=a[0]}return n}function sequenceLengths(e){for(var t=[],n=[1];;){var r=bnByteLength(n)
;if(t.length&&r<=t[t.length-1]&&(r=t[t.length-1]+1),r>LE_MAX_PAYLOAD)return t;t.push(r),n=bnMul(n,e)}}function crc16(e){
for(var t=65535,n=0;n<e.length;n++){t^=e.charCodeAt(n)<<8;for(var r=0;r<8;r++)t=32768&t?65535&(t<<1^4129):t<<1&65535}
return t}function makeSet(e,t,n){return{id:e,name:t,labels:n,memo:{},lengths:{}}}var LE_BUILTIN={}
;function checkUserSet(e,t,n){(null===e||"object"!=typeof e||e instanceof Array)&&leFail("expected an object",t)
;var r=e.id,a=e.name,i=e.labels;"number"==typeof r&&Math.floor(r)===r||leFail("'id' must be an integer",t+".id"),
"string"!=typeof a&&leFail("'name' must be a string",t+".name"),
i instanceof Array||leFail("'labels' must be a list of strings",t+".labels"),
(r<0||r>LE_MAX_SET_ID)&&leFail(r+" is not a set id in 0.."+LE_MAX_SET_ID,t+".id"),
LE_NAME.test(a)||leFail(JSON.stringify(a)+" must match [A-Za-z0-9][A-Za-z0-9._-]*",t+".name"),
(i.length<2||i.length>LE_MAX_CLASSES)&&leFail(i.length+" classes; a set needs 2.."+LE_MAX_CLASSES,t+".labels")
;for(var o={},l=0;l<i.length;l++){var s=i[l]
;"string"==typeof s&&LE_NAME.test(s)||leFail("must match [A-Za-z0-9][A-Za-z0-9._-]*",t+".labels["+l+"]"),
s===LE_NO_FACE&&leFail("'none' is reserved for 'no face' and cannot be a class",t+".labels["+l+"]"),
o.hasOwnProperty(s)&&leFail("duplicate class name",t+".labels"),o[s]=!0}
for(var u in n)n.hasOwnProperty(u)&&n[u].name===a&&n[u].id!==r&&leFail("name "+JSON.stringify(a)+" is already id "+n[u].id,t+".name")
;var c=n[r]
;return!c||c.name===a&&c.labels.join("\n")===i.join("\n")||leFail("id "+r+" is already "+JSON.stringify(c.name),t+".id"),
makeSet(r,a,i.slice())}!function(){for(var e=0;e<LE_BUILTIN_SETS.length;e++){var t=LE_BUILTIN_SETS[e]
;LE_BUILTIN[t[0]]=makeSet(t[0],t[1],t[2])}}();var registryCache={key:null,sets:null};function registryOf(e){
var t=e&&void 0!==e.labelSets?e.labelSets:null,n="string"==typeof t?t:JSON.stringify(t)
;if(registryCache.key===n&&registryCache.sets)return registryCache.sets;var r,a,i={}
;for(r in LE_BUILTIN)LE_BUILTIN.hasOwnProperty(r)&&(i[r]=LE_BUILTIN[r]);for(a=0;a<USER_LABEL_SETS.length;a++){
var o=checkUserSet(USER_LABEL_SETS[a],"USER_LABEL_SETS["+a+"]",i);i[o.id]=o}if(null!==t){var l=t
;if("string"==typeof t)try{l=JSON.parse(t)}catch(e){leFail("not JSON: "+e.message,"variables.labelSets")}
for(null!==l&&"object"==typeof l&&l.label_sets instanceof Array||leFail("expected an object with a 'label_sets' list","variables.labelSets"),
a=0;a<l.label_sets.length;a++){var s=checkUserSet(l.label_sets[a],"label_sets["+a+"]",i);i[s.id]=s}}
return registryCache={key:n,sets:i},i}function recEmotion(e,t,n){var r={n:e+"emotion",vs:null===t?LE_NO_FACE:t}
;return null!==n&&(r.t=n),r}function recValue(e,t,n,r){var a={n:e};return null!==t&&(a.u=t),a.v=n,null!==r&&(a.t=r),a}
function pushReading(e,t,n,r,a){e.push(recEmotion(t,n,a)),null!==r&&e.push(recValue(t+"confidence","/",r,a))}
function exactLength(e,t,n){e.length<t&&leFail("payload truncated: expected "+t+" bytes, got "+e.length,n,0),
e.length>t&&leFail(e.length-t+" unexpected trailing bytes (a "+n+" is "+t+" bytes)",n,t)}function requireBelow(e,t,n){
bnCmp(e,t)>=0&&leFail("value "+bnToDecimal(e)+" is out of range (the field has "+bnToDecimal(t)+" values)",n,0)}
function countFromLength(e,t,n){for(var r=0;r<t.length;r++)if(t[r]===e.length)return r
;leFail(e.length+" bytes is not a valid length (valid: "+t.slice(0,8).join(", ")+", ...)",n,0)}function stateLabel(e,t){
var n=Math.floor(t/LE_STEPS);return n===e.labels.length?[null,null]:[e.labels[n],t%LE_STEPS/100]}
function readingLength(e){return e*LE_STEPS+1<=256?1:2}function decodeReading(e,t,n){var r=t.labels.length
;exactLength(e,readingLength(r),"reading");var a=1===e.length?e[0]:256*e[0]+e[1],i=Math.floor(a/LE_STEPS),o=a%LE_STEPS
;i<r?pushReading(n,"",t.labels[i],o/100,null):i===r&&0===o?pushReading(n,"",null,null,null):leFail("value "+a+" is out of range (the field has "+(r*LE_STEPS+1)+" values)","reading",0)
}function distributionStates(e){return bnComb(100+e-1,e-1)}function cachedLength(e,t,n){var r=e.lengths[t]
;return void 0===r&&(r=e.lengths[t]=n()),r}function distributionShares(e,t){
var n=t.labels.length,r=distributionStates(n);exactLength(e,cachedLength(t,"distribution",function(){
return bnByteLength(r)}),"distribution");var a=bnFromBytes(e,0,e.length);return requireBelow(a,r,"distribution"),
unrankComposition(a,100,n)}function pushDistribution(e,t,n,r){for(var a=0,i=1;i<n.length;i++)n[i]>n[a]&&(a=i)
;pushReading(e,"",t.labels[a],n[a]/100,r)
;for(var o=0;o<n.length;o++)e.push(recValue("probability:"+t.labels[o],"/",n[o]/100,r))}function decodeFaces(e,t,n){
var r=t.labels.length*LE_STEPS,a=countFromLength(e,cachedLength(t,"faces",function(){
return sequenceLengths(bnFromNumber(r))}),"faces"),i=bnFromBytes(e,0,e.length)
;requireBelow(i,bnPow(bnFromNumber(r),a),"faces");for(var o=[],l=a-1;l>=0;l--){var s=bnDivSmall(i,r);o[l]=s[1],i=s[0]}
n.push(recValue("faces",null,a,null));for(var u=0;u<a;u++){var c=stateLabel(t,o[u])
;pushReading(n,"face:"+u+":",c[0],c[1],null)}}function decodeSummary(e,t,n){
e.length||leFail("payload truncated: expected 1 bytes, got 0","summary",0),
e.length>1&&0===e[0]&&leFail("leading zero byte (not the shortest encoding)","summary",0)
;var r=bnDivSmall(bnFromBytes(e,0,e.length),LE_STEPS),a=r[1],i=(r=bnDivSmall(r[0],LE_WINDOW_RADIX))[1],o=t.labels.length,l=unrankBounded(r[0],o+1,LE_SUMMARY_MAX)
;null===l&&leFail("counts exceed "+LE_SUMMARY_MAX+" readings","summary",0);for(var s=-1,u=0,c=0;c<=o;c++)u+=l[c],
c<o&&l[c]>0&&(s<0||l[c]>l[s])&&(s=c);s<0&&a&&leFail("mean confidence given but no class counted","summary",0),
e.length>LE_MAX_PAYLOAD&&leFail("needs "+e.length+" bytes, more than the 51-byte limit","summary",0),
pushReading(n,"",s<0?null:t.labels[s],s<0?null:a/100,null),n.push(recValue("window","s",i+1,null)),
n.push(recValue("readings",null,u,null));for(var h=0;h<o;h++)n.push(recValue("count:"+t.labels[h],null,l[h],null))
;n.push(recValue("count:"+LE_NO_FACE,null,l[o],null))}function vitalsLabelRadix(e){return e*LE_STEPS+2}
function vitalsLength(e){return bnByteLength(bnFromNumber(vitalsLabelRadix(e)*LE_SKIN_RADIX*LE_HEART_RADIX))}
function pushVitals(e,t,n,r){var a=n%LE_HEART_RADIX,i=(n=(n-a)/LE_HEART_RADIX)%LE_SKIN_RADIX,o=(n-i)/LE_SKIN_RADIX
;if(i||a||leFail("neither heart rate nor skin conductance present","vitals",0),o){var l=stateLabel(t,o-1)
;pushReading(e,"",l[0],l[1],r)}a&&e.push(recValue("heartRate","beat/min",a-1,r)),
i&&e.push(recValue("skinConductance","S",(i-1)/1e8,r))}function decodeVitals(e,t,n){var r=t.labels.length
;exactLength(e,vitalsLength(r),"vitals");for(var a=0,i=0;i<e.length;i++)a=256*a+e[i]
;a>=vitalsLabelRadix(r)*LE_SKIN_RADIX*LE_HEART_RADIX&&leFail("value "+a+" is out of range","vitals",0),
pushVitals(n,t,a,null)}function decodeStatus(e,t,n,r){exactLength(e,16,"status")
;for(var a=bnFromBytes(e,0,e.length),i=[],o=[1],l=0;l<LE_STATUS_RADICES.length;l++)i.push(bnFromNumber(LE_STATUS_RADICES[l])),
o=bnMulSmall(o,LE_STATUS_RADICES[l]);requireBelow(a,o,"status")
;for(var s=[],u=unpackDigits(a,i),c=0;c<u.length;c++)s.push(bnToNumber(u[c]))
;for(var h=s[11].toString(16);h.length<4;)h="0"+h;n.push(recValue("protocolVersion",null,s[0],null)),n.push({
n:"firmwareVersion",vs:s[1]+"."+s[2]+"."+s[3]}),s[4]&&n.push(recValue("batteryLevel","%EL",s[4]-1,null)),
n.push(recValue("uptime","s",60*s[5],null)),n.push(recValue("droppedReadings",null,s[6],null)),
n.push(recValue("windowLength","s",s[7]+1,null)),n.push({n:"mode",vs:LE_MODES[s[8]]}),
n.push(recValue("dailyBudget","s",s[9]+1,null)),n.push(recValue("labelSetId",null,s[10],null)),n.push({
n:"labelSetFingerprint",vs:h}),n.push(recValue("commandSeq",null,s[12],null)),n.push({n:"commandStatus",
vs:LE_COMMAND_STATUS[s[13]]});var b=t[s[10]]
;b?crc16(b.labels.join("\n"))!==s[11]&&r.push("label set id "+s[10]+": the device reports fingerprint "+h+", this decoder has "+b.name+" ("+crc16(b.labels.join("\n")).toString(16)+"): its labels may not match the device"):r.push("label set id "+s[10]+" is not declared here: its messages will not decode")
}function batchElementStates(e,t){
return 5===e?bnFromNumber(t*LE_STEPS+1):6===e?distributionStates(t):bnFromNumber(vitalsLabelRadix(t)*LE_SKIN_RADIX*LE_HEART_RADIX)
}function decodeBatch(e,t,n,r){
var a=t.labels.length,i=batchElementStates(n,a),o=bnMulSmall(i,LE_GAP_RADIX),l=countFromLength(e,cachedLength(t,"batch"+n,function(){
return sequenceLengths(o)}),"batch");0===l&&leFail("a batch needs at least one entry","batch",0)
;var s=bnFromBytes(e,0,e.length);requireBelow(s,bnPow(o,l),"batch");for(var u=[],c=[],h=l-1;h>=0;h--){
var b=bnDivmod(s,i);c[h]=b[1],b=bnDivSmall(b[0],LE_GAP_RADIX),u[h]=b[1],s=b[0]}for(var d=0,f=0;f<l;f++){
var m=(d+=u[f])?-d:null;if(5===n){var g=stateLabel(t,bnToNumber(c[f]));pushReading(r,"",g[0],g[1],m)}else if(6===n){
var p=c[f];requireBelow(p,i,"distribution"),pushDistribution(r,t,unrankComposition(p,100,a),m)
}else pushVitals(r,t,bnToNumber(c[f]),m)}}function decodeCompact(e,t,n,r){var a=[]
;if(2===t)return decodeStatus(e,n,a,r),a
;("number"!=typeof t||Math.floor(t)!==t||t<16||t>207)&&leFail("port "+t+" carries no compact emotion message","fport")
;var i=Math.floor((t-16)/8),o=(t-16)%8,l=n[i]
;return l||leFail("port "+t+" is label set id "+i+", which this decoder does not know; declare it (labels file) rather than guess","fport"),
0===o?decodeReading(e,l,a):1===o?pushDistribution(a,l,distributionShares(e,l),null):2===o?decodeFaces(e,l,a):3===o?decodeSummary(e,l,a):4===o?decodeVitals(e,l,a):decodeBatch(e,l,o,a),
a}var CBOR_MAX_DEPTH=64,CBOR_INT_LIMIT=0x10000000000000000,SENML_LABELS={"-2":["bn","text"],"-3":["bt","number"],
"-4":["bu","text"],"-5":["bv","number"],"-6":["bs","number"],"-1":["bver","int"],0:["n","text"],1:["u","text"],
2:["v","number"],3:["vs","text"],4:["vb","bool"],8:["vd","bytes"],5:["s","number"],6:["t","number"],7:["ut","number"]
},SENML_ORDER=["bn","bt","bu","bv","bs","bver","n","u","v","vs","vb","vd","s","t","ut"],THINGSML_INDEX={
"-24":["temperature","Cel"],"-23":["humidity","%RH"],"-22":["latitude","lat"],"-21":["longitude","lon"],
"-20":["altitude","m"],"-19":["power","W"],"-18":["pressure","Pa"],"-17":["angle","rad"],"-16":["length","m"],
"-15":["breadth","m"],"-14":["height","m"],"-13":["weight","kg"],"-12":["thickness","m"],"-11":["distance","m"],
"-10":["area","m2"],"-9":["volume","m3"],"-8":["velocity","m/s"],"-7":["electricCurrent","A"],
"-6":["electricPotential","V"],"-5":["electricResistance","Ohm"],"-4":["illuminance","lx"],
"-3":["accelerationX","m/s2"],"-2":["accelerationY","m/s2"],"-1":["accelerationZ","m/s2"],0:["heading","rad"],
1:["COConcentration","ppm"],2:["CO2Concentration","ppm"],3:["sound","dB"],4:["frequency","Hz"],5:["batteryLevel","%EL"],
6:["batteryVoltage","V"],7:["radius","m"],8:["batteryLevelLow","/"],9:["compassX","T"],10:["compassY","T"],
11:["compassZ","T"],12:["readSwitch","/"],13:["presence",null],14:["counter",null]};function CborFloat(e){this.value=e}
function CborBytes(e){this.bytes=e}function CborMap(){this.keys=[],this.values=[]}function CborBigInt(e,t){this.value=e,
this.text=t}function cborError(e,t){leFail("invalid CBOR: "+e+(void 0===t?"":" at byte "+t))}function CborReader(e){
this.bytes=e,this.pos=0}function bnToDecimal(e){for(var t="",n=e;n.length;){var r=bnDivSmall(n,1e7),a=String(r[1])
;if((n=r[0]).length)for(;a.length<7;)a="0"+a;t=a+t}return t||"0"}function halfToNumber(e){var t,n=e>>10&31,r=1023&e
;return t=0===n?r*Math.pow(2,-24):31===n?r?NaN:1/0:(r+1024)*Math.pow(2,n-25),32768&e?-t:t}function singleToNumber(e,t){
var n,r=(e[t]<<24|e[t+1]<<16|e[t+2]<<8|e[t+3])>>>0,a=r>>>23&255,i=8388607&r
;return n=0===a?i*Math.pow(2,-149):255===a?i?NaN:1/0:(i+8388608)*Math.pow(2,a-150),r>>>31?-n:n}
function doubleToNumber(e,t){
var n,r=(e[t]<<24|e[t+1]<<16|e[t+2]<<8|e[t+3])>>>0,a=r>>>20&2047,i=4294967296*(1048575&r)+((e[t+4]<<24|e[t+5]<<16|e[t+6]<<8|e[t+7])>>>0)
;return n=0===a?i*Math.pow(2,-1074):2047===a?i?NaN:1/0:(i+4503599627370496)*Math.pow(2,-52)*Math.pow(2,a-1023),
r>>>31?-n:n}function utf8Decode(e,t,n){for(var r="",a=t;a<n;){var i,o,l,s=e[a];if(s<128)r+=String.fromCharCode(s),
a++;else{s>=194&&s<=223?(i=31&s,o=1,l=128):s>=224&&s<=239?(i=15&s,o=2,l=2048):s>=240&&s<=244?(i=7&s,o=3,
l=65536):cborError("text string is not UTF-8",a),a+o>=n&&cborError("text string is not UTF-8",a);for(var u=1;u<=o;u++){
var c=e[a+u];128!=(192&c)&&cborError("text string is not UTF-8",a),i=64*i+(63&c)}
(i<l||i>1114111||i>=55296&&i<=57343)&&cborError("text string is not UTF-8",a),i>=65536?(i-=65536,
r+=String.fromCharCode(55296+(i>>10),56320+(1023&i))):r+=String.fromCharCode(i),a+=o+1}}return r}
function mapKeyIdentity(e){
return"number"==typeof e?"i"+e:e instanceof CborBigInt?"i"+e.text:"string"==typeof e?"s"+e:null}
function cborTypeName(e){
return null===e?"null":"boolean"==typeof e?"boolean":"number"==typeof e||e instanceof CborFloat||e instanceof CborBigInt?"number":"string"==typeof e?"string":e instanceof CborBytes?"byte string":e instanceof CborMap?"object":"array"
}function isCborInt(e){return"number"==typeof e||e instanceof CborBigInt}function base64url(e){
for(var t="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",n="",r=0;r<e.length;r+=3){
var a=65536*e[r]+256*(e[r+1]||0)+(e[r+2]||0);n+=t.charAt(a>>18)+t.charAt(a>>12&63),r+1<e.length&&(n+=t.charAt(a>>6&63)),
r+2<e.length&&(n+=t.charAt(63&a))}return n}function setOwn(e,t,n){Object.defineProperty(e,t,{value:n,enumerable:!0,
writable:!0,configurable:!0})}function cborToJson(e){if(e instanceof CborFloat||e instanceof CborBigInt)return e.value
;if(e instanceof CborBytes)return base64url(e.bytes);if(e instanceof CborMap){for(var t={},n=0;n<e.keys.length;n++){
var r=e.keys[n];setOwn(t,r instanceof CborBigInt?r.text:String(r),cborToJson(e.values[n]))}return t}
if(e instanceof Array){for(var a=[],i=0;i<e.length;i++)a.push(cborToJson(e[i]));return a}return e}
function checkKind(e,t,n){
("text"===e?"string"==typeof t:"number"===e?"number"==typeof t||t instanceof CborFloat||t instanceof CborBigInt:"int"===e?isCborInt(t):"bool"===e?"boolean"==typeof t:t instanceof CborBytes)||leFail("expected a"+("int"===e?"n integer":" "+e)+", got "+cborTypeName(t),n)
}function thingsmlRecord(e,t){t instanceof CborMap||leFail("expected a map, got "+cborTypeName(t),"record "+e)
;for(var n={},r=[],a=[],i=[],o=0;o<t.keys.length;o++){
var l=t.keys[o],s=t.values[o],u="record "+e+" field "+JSON.stringify(String(l instanceof CborBigInt?l.text:l))
;if(23===l||"i_"===l)i.push(s);else if(isCborInt(l)){var c="number"==typeof l?SENML_LABELS[String(l)]:void 0
;c||leFail("unknown integer label",u),checkKind(c[1],s,u),n[c[0]]="bytes"===c[1]?base64url(s.bytes):cborToJson(s)}else{
for(var h=0;h<SENML_ORDER.length;h++)SENML_ORDER[h]===l&&leFail("label must be the integer label, not text",u)
;"_"===l.charAt(l.length-1)&&leFail("must-understand field (RFC 8428 section 4.4) is not supported",u),r.push(l),
a.push(cborToJson(s))}}if(i.length>1&&leFail("measurement index given twice (23 and 'i_')","record "+e+" field 'i_'"),
i.length){var b=i[0]
;"number"!=typeof b&&leFail("expected an integer measurement index, got "+cborTypeName(b),"record "+e+" field 'i_'")
;var d=THINGSML_INDEX[String(b)];d||leFail("unknown measurement index "+b,"record "+e+" field 'i_'"),
void 0!==n.n&&leFail("record has both a name and a measurement index","record "+e+" field 'n'"),n.n=d[0],
void 0===n.u&&null!==d[1]&&(n.u=d[1])}
for(var f={},m=0;m<SENML_ORDER.length;m++)void 0!==n[SENML_ORDER[m]]&&(f[SENML_ORDER[m]]=n[SENML_ORDER[m]])
;for(var g=0;g<r.length;g++)Object.prototype.hasOwnProperty.call(f,r[g])||setOwn(f,r[g],a[g]);return f}
function decodeThingsml(e){var t=new CborReader(e),n=t.item(0)
;t.pos!==e.length&&leFail(e.length-t.pos+" bytes of trailing data after the CBOR item",null,t.pos),
n instanceof Array||leFail("expected a CBOR array of records, got "+cborTypeName(n))
;for(var r=[],a=0;a<n.length;a++)r.push(thingsmlRecord(a,n[a]));return r}CborReader.prototype.need=function(e){
this.pos+e>this.bytes.length&&cborError("premature end of stream",this.pos)},CborReader.prototype.uint=function(e){
this.need(e);for(var t=0,n=0;n<e;n++)t=256*t+this.bytes[this.pos+n];return this.pos+=e,t},
CborReader.prototype.argument=function(e){if(e<24)return[e,null];if(24===e)return[this.uint(1),null]
;if(25===e)return[this.uint(2),null];if(26===e)return[this.uint(4),null];if(27===e){this.need(8)
;var t=bnFromBytes(this.bytes,this.pos,this.pos+8)
;return this.pos+=8,bnBitLength(t)<=53?[bnToNumber(t),null]:[bnToNumber(t),bnToDecimal(t)]}
cborError("invalid additional information "+e,this.pos-1)},CborReader.prototype.chunk=function(e,t){
var n=this.argument(t)[0];this.need(n);var r=this.pos
;return this.pos+=n,2===e?this.bytes.slice(r,r+n):utf8Decode(this.bytes,r,r+n)},CborReader.prototype.isBreak=function(){
return this.need(1),255===this.bytes[this.pos]&&(this.pos++,!0)},CborReader.prototype.item=function(e){this.need(1)
;var t,n,r=this.pos,a=this.bytes[this.pos++],i=a>>5,o=31&a;if(0===i||1===i)return t=this.argument(o),
0===i?null===t[1]?t[0]:new CborBigInt(t[0],t[1]):null===t[1]?-1-t[0]:(t[0]>=CBOR_INT_LIMIT&&"18446744073709551615"===t[1]&&leFail("integer out of range (magnitude must be below 2**64)"),
new CborBigInt(-1-t[0],"-"+bnToDecimal(bnAdd(bnFromBytes(this.bytes,this.pos-8,this.pos),[1]))));if(2===i||3===i){
if(31!==o){var l=this.chunk(i,o);return 2===i?new CborBytes(l):l}for(var s=2===i?[]:"";!this.isBreak();){
var u=this.bytes[this.pos++];u>>5===i&&31&~u||cborError("non-matching chunk in an indefinite length string",this.pos-1)
;var c=this.chunk(i,31&u);s=s.concat(c)}return 2===i?new CborBytes(s):s}if(4===i||5===i){
e>=CBOR_MAX_DEPTH&&cborError("maximum container nesting depth (64) exceeded",r);var h=31===o,b=h?-1:this.argument(o)[0]
;if(4===i){for(var d=[],f=0;h?!this.isBreak():f<b;f++)d.push(this.item(e+1));return d}
for(var m=new CborMap,g={},p=0;h?!this.isBreak():p<b;p++){var v=this.item(e+1),_=mapKeyIdentity(v)
;null===_&&leFail("map key must be an integer or text label","record"),
g.hasOwnProperty(_)&&cborError("duplicate map key",r),g[_]=!0,m.keys.push(v),m.values.push(this.item(e+1))}return m}
return 6===i&&leFail("invalid CBOR: CBOR tags are not allowed in SenML"),
20===o||21===o?21===o:22===o?null:(25===o?n=halfToNumber(this.uint(2)):26===o?(this.need(4),
n=singleToNumber(this.bytes,this.pos),this.pos+=4):27===o?(this.need(8),n=doubleToNumber(this.bytes,this.pos),
this.pos+=8):31===o?cborError("break outside an indefinite length item",r):(24===o?this.uint(1):o>=28&&cborError("invalid additional information "+o,r),
leFail("unsupported value (undefined or a simple value)")),
n==n&&n!==1/0&&n!==-1/0||leFail("expected a finite number, got "+n),new CborFloat(n))};var LE_OPS={1:["set_window",2],
2:["set_mode",1],3:["set_daily_budget",2],4:["set_label_set",4],5:["send_status",0],6:["set_status_interval",2]}
;function checkInt(e,t,n,r){
return("number"!=typeof e||Math.floor(e)!==e||e<t||e>n)&&leFail(JSON.stringify(e)+" is not an integer in "+t+".."+n,r),e
}function labelSetWarning(e,t,n){var r=LE_BUILTIN[e.set_id];if(r){var a=crc16(r.labels.join("\n"))
;if(r.labels.length!==e.classes||a!==e.fingerprint)return n+": the relay will reject this: built-in set "+e.set_id+" ("+r.name+") has "+r.labels.length+" classes and fingerprint "+a
}else if(e.classes>LE_RELAY_MAX_CLASSES)return n+": the relay will reject this: it keeps sums for at most "+LE_RELAY_MAX_CLASSES+" classes"
;return null}function decodeCommands(e,t){e.length||leFail("payload truncated: expected 1 bytes, got 0","seq",0)
;for(var n=[],r=1;r<e.length;){var a=LE_OPS[e[r]];a||leFail("unknown opcode "+e[r],"opcode",r);var i=a[1]
;r+1+i>e.length&&leFail("payload truncated: expected "+i+" bytes, got "+(e.length-r-1),a[0],r+1)
;var o=r+1,l=2===i?256*e[o]+e[o+1]:0,s={op:a[0]}
;if("set_window"===a[0])s.window_s=l+1;else if("set_mode"===a[0])e[o]>3&&leFail(e[o]+" is not a Mode","mode",o),
s.mode=LE_MODES[e[o]];else if("set_daily_budget"===a[0])s.budget_s=checkAt(l+1,1,1024,"budget_s",o);else if("set_label_set"===a[0]){
s.set_id=checkAt(e[o],0,LE_MAX_SET_ID,"set_id",o),s.classes=checkAt(e[o+1],2,LE_MAX_CLASSES,"classes",o),
s.fingerprint=256*e[o+2]+e[o+3];var u=labelSetWarning(s,null,"commands["+n.length+"]");u&&t.push(u)
}else"set_status_interval"===a[0]&&(s.interval_min=checkAt(l,1,65535,"interval_min",o));n.push(s),r+=1+i}return{
seq:e[0],commands:n}}function checkAt(e,t,n,r,a){return(e<t||e>n)&&leFail(e+" is not an integer in "+t+".."+n,r,a),e}
function encodeCommands(e,t){null!==e&&"object"==typeof e||leFail("expected an object {seq, commands}","data")
;var n=[checkInt(e.seq,0,255,"seq")],r=void 0===e.commands?[]:e.commands
;r instanceof Array||leFail("expected a list of commands","commands");for(var a=0;a<r.length;a++){
var i=r[a],o="commands["+a+"]";if(null!==i&&"object"==typeof i||leFail("expected an object with an op",o),
"set_window"===i.op){var l=checkInt(i.window_s,1,65536,o+".window_s")-1;n.push(1,l>>8,255&l)}else if("set_mode"===i.op){
var s="string"==typeof i.mode?LE_MODES.indexOf(i.mode):-1
;s<0&&leFail(JSON.stringify(i.mode)+" is not a mode ("+LE_MODES.join(", ")+")",o+".mode"),n.push(2,s)
}else if("set_daily_budget"===i.op){var u=checkInt(i.budget_s,1,1024,o+".budget_s")-1;n.push(3,u>>8,255&u)
}else if("set_label_set"===i.op){var c={op:i.op,set_id:checkInt(i.set_id,0,LE_MAX_SET_ID,o+".set_id"),
classes:checkInt(i.classes,2,LE_MAX_CLASSES,o+".classes"),fingerprint:checkInt(i.fingerprint,0,65535,o+".fingerprint")
},h=labelSetWarning(c,null,o);h&&t.push(h),n.push(4,c.set_id,c.classes,c.fingerprint>>8,255&c.fingerprint)
}else if("send_status"===i.op)n.push(5);else if("set_status_interval"===i.op){
var b=checkInt(i.interval_min,1,65535,o+".interval_min");n.push(6,b>>8,255&b)
}else leFail("unknown op "+JSON.stringify(i.op)+" (set_window, set_mode, set_daily_budget, set_label_set, send_status, set_status_interval)",o+".op")
}return n.length>LE_MAX_PAYLOAD&&leFail("needs "+n.length+" bytes, more than the 51-byte limit","commands"),n}
function inputBytes(e){var t=e&&e.bytes
;t&&"number"==typeof t.length||leFail("input.bytes must be an array of byte values","bytes")
;for(var n=[],r=0;r<t.length;r++){var a=t[r]
;("number"!=typeof a||Math.floor(a)!==a||a<0||a>255)&&leFail("input.bytes["+r+"] is not a byte value","bytes"),n.push(a)
}return n}function outcome(e){var t=[];try{var n=e(t);return t.length&&(n.warnings=t),n}catch(e){
return e instanceof LeError?{errors:[e.message]}:{errors:["internal error: "+(e&&e.message?e.message:String(e))]}}}
function decodeUplink(e){return outcome(function(t){var n=inputBytes(e),r=e.fPort;return{data:{
records:1===r?decodeThingsml(n):decodeCompact(n,r,registryOf(e.variables),t)}}})}function encodeDownlink(e){
return outcome(function(t){return{bytes:encodeCommands(e?e.data:void 0,t),fPort:LE_COMMAND_PORT}})}
function decodeDownlink(e){return outcome(function(t){var n=inputBytes(e)
;return e.fPort!==LE_COMMAND_PORT&&leFail("port "+e.fPort+" carries no command; commands go on port 3","fport"),{
data:decodeCommands(n,t)}})}"undefined"!=typeof module&&module.exports&&(module.exports={decodeUplink:decodeUplink,
encodeDownlink:encodeDownlink,decodeDownlink:decodeDownlink});
